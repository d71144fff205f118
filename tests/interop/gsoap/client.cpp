// pars-ws interop (tests/interop/test_gsoap.py): the proxy soapcpp2 generated from the header wsdl2h
// wrote from the live WSDL (with typemap.dat's prefixes), used as an LMS written in C++ would use it.
// PROXY, PROXY_HEADER and NSMAP_HEADER name what soapcpp2 generated for the WSDL's one binding. One tab-separated line
// per step.
#include PROXY_HEADER
#include <cstdio>
#include <string>

#include NSMAP_HEADER

static void fault(const char *step, PROXY &proxy, int error) {
    if (error == SOAP_OK) {
        std::printf("%s\tno fault\n", step);
        return;
    }
    const char *subcode = proxy.soap->version == 2 ? soap_fault_subcode(proxy.soap) : NULL;
    std::printf("%s\tsoap_fault\t%s%s%s\t%s\n", step, *soap_faultcode(proxy.soap), subcode ? " " : "",
                subcode ? subcode : "", soap_fault_string(proxy.soap));
}

int main(int argc, char **argv) {
    if (argc != 7) return 2;
    std::string endpoint = argv[1], provider = argv[2], user = argv[3], password = argv[4], credit_id = argv[5];
    PROXY proxy(endpoint.c_str());
    struct soap *soap = proxy.soap;

    m__ParsUniqueID *id = soap_new_m__ParsUniqueID(soap);
    id->__item = "1000106";
    id->domain = "ABIM";
    m__ParsMember *member = soap_new_m__ParsMember(soap);
    member->UniqueID.push_back(id);
    member->Name = soap_new_n__ParsName(soap);
    member->Name->GivenName = soap_new_std__string(soap);
    *member->Name->GivenName = "Test2";
    member->Name->FamilyName = soap_new_std__string(soap);
    *member->Name->FamilyName = "Account2";
    member->PersonalInfo = soap_new_m__ParsPersonalInfo(soap);
    member->PersonalInfo->BirthDate = soap_new_std__string(soap);
    *member->PersonalInfo->BirthDate = "1900-03-01";

    ar__ParsCreditReceived *received = soap_new_ar__ParsCreditReceived(soap);
    received->hx__accreditingBody = soap_new_std__string(soap);
    *received->hx__accreditingBody = "ABIM";
    received->hx__activityCertification = soap_new_std__string(soap);
    *received->hx__activityCertification = "ABIM MOC Part II";
    received->hx__creditUnit = (enum _hx__creditUnit *)soap_malloc(soap, sizeof(enum _hx__creditUnit));
    *received->hx__creditUnit = _hx__creditUnit__Point;
    received->hx__numberOfCredits = soap_new_std__string(soap);
    *received->hx__numberOfCredits = "1";
    ar__ParsCreditCertificate *certificate = soap_new_ar__ParsCreditCertificate(soap);
    certificate->CreditReceived = received;
    certificate->CreditID = credit_id;
    ar__ParsModule *module = soap_new_ar__ParsModule(soap);
    module->ModuleName = soap_new_ar__ParsModuleName(soap);
    module->ModuleName->__item = "An Other is an Other";
    module->ModuleName->moduleID = soap_new_std__string(soap);
    *module->ModuleName->moduleID = "200930149";
    module->Status = ar__ParsStatus__Completed;
    module->CompletedDateTime = (time_t *)soap_malloc(soap, sizeof(time_t));
    if (soap_s2dateTime(soap, argv[6], module->CompletedDateTime)) return 3;
    module->CreditCertificate.push_back(certificate);
    ar__ParsActivity *activity = soap_new_ar__ParsActivity(soap);
    activity->ProviderOrganization = "Test Provider";
    activity->ActivityName = "An Other is an Other";
    activity->Module = module;

    ar__ParsActivityReport *report = soap_new_ar__ParsActivityReport(soap);
    report->ReportingOrganization = "Test Provider";
    report->Member = member;
    report->Activity = activity;
    report->XtensibleInfo = soap_new_ar__ParsXtensibleInfo(soap);
    report->XtensibleInfo->__any.push_back(
        "<ex:learnerRecordAction xmlns:ex=\"urn:pars-ws:activityreport-extension:v1\">add</ex:learnerRecordAction>");
    _ar__ActivityReports reports;
    reports.DateTimeCreated = time(NULL);
    reports.ActivityReport.push_back(report);

    _p__SaveLearnerActivity save;
    save.ProviderId = &provider;
    save.User = &user;
    save.Password = &password;
    save.ar__ActivityReports = &reports;
    _p__SaveLearnerActivityResponse saved;
    if (proxy.SaveLearnerActivity(&save, saved) != SOAP_OK) {
        fault("save", proxy, soap->error);
        return 1;
    }
    p__RecordResult *result = saved.Results->RecordResult.at(0);
    std::printf("saved\t%s\t%s\t%s\n", soap_p__ResultSummaryValue2s(soap, saved.ResultSummary),
                result->CreditID ? result->CreditID->c_str() : "", soap_p__RecordResultStatus2s(soap, result->Status));

    _p__GetLearnerStatusByCreditId query;
    query.ProviderId = &provider;
    query.User = &user;
    query.Password = &password;
    query.CreditID = credit_id;
    _p__GetLearnerStatusByCreditIdResponse found;
    if (proxy.GetLearnerStatusByCreditId(&query, found) != SOAP_OK) {
        fault("status", proxy, soap->error);
        return 1;
    }
    for (p__LearnerStatus *status : found.LearnerStatus) {
        std::printf("status\t%s\t%s\t%s\n", status->CreditID.c_str(), soap_p__LearnerRecordStatus2s(soap, status->Status),
                    status->CompletionDate.c_str());
    }

    std::string wrong = "not-" + password;
    query.Password = &wrong;
    fault("wrong-password", proxy, proxy.GetLearnerStatusByCreditId(&query, found));
    std::string too_long(51, '9');  // ProviderId is at most 50 characters in the schema
    query.Password = &password;
    query.ProviderId = &too_long;
    fault("schema-invalid", proxy, proxy.GetLearnerStatusByCreditId(&query, found));
    return 0;
}
