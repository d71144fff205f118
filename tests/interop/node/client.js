// pars-ws interop (tests/interop/test_node_soap.py): node-soap's client built from the live WSDL,
// used as an LMS written for Node would use it. Prints one tab-separated line per step.
//   node client.js WSDL_URL PROVIDER USER PASSWORD CREDIT_ID COMPLETED [soap12]
const soap = require("soap");

const [wsdl, provider, user, password, creditId, completed, version] = process.argv.slice(2);
const options = version === "soap12" ? { forceSoap12Headers: true } : {};

function report() {
  return {
    DateTimeCreated: "2026-06-01T12:00:00",
    ActivityReport: [{
      ReportingOrganization: "Test Provider",
      Member: {
        UniqueID: [{ attributes: { domain: "ABIM" }, $value: "1000106" }],
        Name: { GivenName: "Test2", FamilyName: "Account2" },
        PersonalInfo: { BirthDate: "1900-03-01" },
      },
      Activity: {
        ProviderOrganization: "Test Provider",
        ActivityName: "An Other is an Other",
        Module: {
          ModuleName: { attributes: { moduleID: "200930149" }, $value: "An Other is an Other" },
          Status: "Completed",
          CompletedDateTime: completed,
          CreditCertificate: [{
            CreditReceived: {
              accreditingBody: "ABIM", activityCertification: "ABIM MOC Part II",
              creditUnit: "Point", numberOfCredits: "1",
            },
            CreditID: creditId,
          }],
        },
      },
      XtensibleInfo: {
        $xml: '<ex:learnerRecordAction xmlns:ex="urn:pars-ws:activityreport-extension:v1">add</ex:learnerRecordAction>',
      },
    }],
  };
}

function fault(step, error) {
  // node-soap gives the fault as the parsed body of the response (error.root.Envelope.Body.Fault).
  const body = error.root && error.root.Envelope && error.root.Envelope.Body;
  const f = body && body.Fault;
  if (!f) {
    console.log(`${step}\tno fault body\t${error.message}`);
    return;
  }
  const code = f.faultcode || [f.Code.Value, f.Code.Subcode && f.Code.Subcode.Value].filter(Boolean).join(" ");
  const text = f.faultstring || (f.Reason && f.Reason.Text && (f.Reason.Text.$value || f.Reason.Text));
  console.log(`${step}\tfault body\t${code}\t${text}\tHTTP ${error.response && error.response.status}`);
}

async function main() {
  const client = await soap.createClientAsync(wsdl, options);
  const creds = { ProviderId: provider, User: user, Password: password };
  // No port named: node-soap takes the WSDL's (one) port.
  const [saved] = await client.SaveLearnerActivityAsync({ ...creds, ActivityReports: report() });
  const result = saved.Results.RecordResult[0];
  console.log(`saved\t${saved.ResultSummary}\t${result.CreditID}\t${result.Status}`);
  const [found] = await client.GetLearnerStatusByCreditIdAsync({ ...creds, CreditID: creditId });
  for (const status of [].concat(found.LearnerStatus || [])) {
    console.log(`status\t${status.CreditID}\t${status.Status}\t${status.CompletionDate}`);
  }
  const steps = {
    "wrong-password": { ...creds, Password: `not-${password}`, CreditID: creditId },
    // ProviderId is at most 50 characters in the schema.
    "schema-invalid": { ...creds, ProviderId: "9".repeat(51), CreditID: creditId },
  };
  for (const [step, args] of Object.entries(steps)) {
    try {
      await client.GetLearnerStatusByCreditIdAsync(args);
      console.log(`${step}\tno fault`);
    } catch (error) {
      fault(step, error);
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
