// pars-ws interop (tests/interop/test_jaxws.py): the classes wsimport generated from the live WSDL,
// used as an LMS written in Java would use them. Prints one tab-separated line per step.
import java.math.BigDecimal;
import java.net.URL;
import java.util.Iterator;
import javax.xml.datatype.DatatypeFactory;
import javax.xml.namespace.QName;
import javax.xml.soap.SOAPFault;
import javax.xml.ws.Holder;
import javax.xml.ws.soap.SOAPFaultException;
import org.medbiq.ns.activityreport.v1.*;
import org.medbiq.ns.member.v1.ParsMember;
import org.medbiq.ns.member.v1.ParsPersonalInfo;
import org.medbiq.ns.member.v1.ParsUniqueID;
import org.medbiq.ns.name.v1.ParsName;
import ws.pars.learner.v1.*;

public class Client {
    interface Call {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        String wsdl = args[0], provider = args[1], user = args[2], password = args[3], creditId = args[4];
        // No port named: JAX-WS takes the WSDL's port for this interface (SOAP 1.1 or 1.2 as the WSDL says).
        ACCMELearnerServiceSoap port = new ACCMELearnerService(new URL(wsdl)).getPort(ACCMELearnerServiceSoap.class);
        Holder<ResultSummaryValue> summary = new Holder<>();
        Holder<RecordResultList> results = new Holder<>();
        port.saveLearnerActivity(provider, user, password, reports(creditId, args[5]), summary, results);
        RecordResult saved = results.value.getRecordResult().get(0);
        System.out.println("saved\t" + summary.value.value() + "\t" + saved.getCreditID() + "\t" + saved.getStatus().value());
        for (LearnerStatus status : port.getLearnerStatusByCreditId(provider, user, password, creditId)) {
            System.out.println("status\t" + status.getCreditID() + "\t" + status.getStatus().value()
                               + "\t" + status.getCompletionDate());
        }
        fault("wrong-password", () -> port.getLearnerStatusByCreditId(provider, user, "not-" + password, creditId));
        // ProviderId is at most 50 characters in the schema.
        fault("schema-invalid", () -> port.getLearnerStatusByCreditId("9".repeat(51), user, password, creditId));
    }

    static ActivityReports reports(String creditId, String completed) throws Exception {
        DatatypeFactory dates = DatatypeFactory.newInstance();
        ParsUniqueID id = new ParsUniqueID();
        id.setDomain("ABIM");
        id.setValue("1000106");
        ParsName name = new ParsName();
        name.setGivenName("Test2");
        name.setFamilyName("Account2");
        ParsPersonalInfo info = new ParsPersonalInfo();
        info.setBirthDate(dates.newXMLGregorianCalendar("1900-03-01"));
        ParsMember member = new ParsMember();
        member.getUniqueID().add(id);
        member.setName(name);
        member.setPersonalInfo(info);

        ParsCreditReceived received = new ParsCreditReceived();
        received.setAccreditingBody("ABIM");
        received.setActivityCertification("ABIM MOC Part II");
        received.setCreditUnit("Point");
        received.setNumberOfCredits(new BigDecimal("1"));
        ParsCreditCertificate certificate = new ParsCreditCertificate();
        certificate.setCreditReceived(received);
        certificate.setCreditID(creditId);
        ParsModuleName moduleName = new ParsModuleName();
        moduleName.setModuleID("200930149");
        moduleName.setValue("An Other is an Other");
        ParsModule module = new ParsModule();
        module.setModuleName(moduleName);
        module.setStatus(ParsStatus.COMPLETED);
        module.setCompletedDateTime(dates.newXMLGregorianCalendar(completed));
        module.getCreditCertificate().add(certificate);
        ParsActivity activity = new ParsActivity();
        activity.setProviderOrganization("Test Provider");
        activity.setActivityName("An Other is an Other");
        activity.setModule(module);

        ParsXtensibleInfo extension = new ParsXtensibleInfo();
        extension.getAny().add(new ws.pars.activityreport_extension.v1.ObjectFactory().createLearnerRecordAction("add"));
        ParsActivityReport report = new ParsActivityReport();
        report.setReportingOrganization("Test Provider");
        report.setMember(member);
        report.setActivity(activity);
        report.setXtensibleInfo(extension);
        ActivityReports reports = new ActivityReports();
        reports.setDateTimeCreated(dates.newXMLGregorianCalendar("2026-06-01T12:00:00"));
        reports.getActivityReport().add(report);
        return reports;
    }

    static void fault(String step, Call call) throws Exception {
        try {
            call.run();
            System.out.println(step + "\tno fault");
        } catch (SOAPFaultException exc) {
            SOAPFault fault = exc.getFault();
            StringBuilder codes = new StringBuilder(fault.getFaultCodeAsQName().toString());
            if (fault.getNamespaceURI().equals(javax.xml.soap.SOAPConstants.URI_NS_SOAP_1_2_ENVELOPE)) {
                for (Iterator<?> subcodes = fault.getFaultSubcodes(); subcodes.hasNext(); ) {
                    codes.append(" ").append(subcodes.next());
                }
            }
            System.out.println(step + "\tSOAPFaultException\t" + codes + "\t" + fault.getFaultString());
        }
    }
}
