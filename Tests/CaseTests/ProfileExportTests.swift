import Foundation
import TestSupport
import Testing

/// `lead-export profile` on leads a test writes: each shipped profile's exact header and
/// cells, names split, phones in E.164 with the bad ones rejected, suppression counted.
@Suite(.serialized) struct ProfileExportTests {
    static let leads = [
        #"{"address_key":"K1","owner_name":"SMITH, JOHN A","property_address":"1 ELM ST","property_city":"AUSTIN","property_state":"TX","property_zip":"78701","mailing_address":"PO BOX 9","mailing_city":"AUSTIN","mailing_state":"TX","mailing_zip":"78767-0009","ownerPhone":"(512) 555-0101","ownerEmail":"John.Smith@Example.com","dnama":true}"#,
        #"{"address_key":"K2","owner_name":"ACME HOLDINGS LLC","property_address":"2 OAK ST","property_city":"AUSTIN","property_state":"TX","property_zip":"78702","mailing_address":"10 MAIN ST STE 5","mailing_city":"DALLAS","mailing_state":"TX","mailing_zip":"75201","ownerPhone":"512-555-01","ownerEmail":"not an email"}"#,
        #"{"address_key":"K3","owner_name":"MARY & TOM JONES","property_address":"3 ASH ST","property_city":"AUSTIN","property_state":"TX","property_zip":"78703","mailing_address":"3 ASH ST","mailing_city":"AUSTIN","mailing_state":"TX","mailing_zip":"78703","ownerPhone":"+1 512 555 0103","ownerEmail":"mary@example.com"}"#,
        #"{"address_key":"K4","owner_name":"Dr. Maria de la Cruz","property_address":"4 PINE ST","property_city":"AUSTIN","property_state":"TX","property_zip":"78704","mailing_address":"","mailing_city":"","mailing_state":"","mailing_zip":""}"#,
    ]

    /// stages/export with suppression lists naming lead 3's phone and email and lead 1's mailing line.
    static func rules() throws -> String {
        let dir = try Binaries.scratch("profile-rules") + "/export"
        try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages/export", toPath: dir)
        try "phone\n512.555.0103\n".write(toFile: dir + "/suppress/do-not-call.csv", atomically: true, encoding: .utf8)
        try "email\nMARY@example.com\n".write(toFile: dir + "/suppress/opted-out.csv", atomically: true, encoding: .utf8)
        try "address,zip\n\"po box 9\",78767\n".write(toFile: dir + "/suppress/do-not-mail.csv", atomically: true, encoding: .utf8)
        return dir
    }

    func export(_ profile: String, rules: String?) throws -> (Binaries.Result, String, String) {
        let dir = try Binaries.scratch("profile")
        try (ProfileExportTests.leads.joined(separator: "\n") + "\n").write(toFile: dir + "/leads.jsonl", atomically: true, encoding: .utf8)
        var args = ["profile", profile, "--input", "leads.jsonl", "--now", "2026-11-23T06:00:00Z", "-o", "out"]
        if let rules { args += ["--rules", rules] }
        let result = try Binaries.run("lead-export", args, in: dir)
        let out = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
        let rejects = (try? String(contentsOfFile: dir + "/out.rejects.jsonl", encoding: .utf8)) ?? ""
        return (result, out, rejects)
    }

    @Test func tracerfySplitsNames() throws {
        let (result, out, _) = try export("tracerfy", rules: nil)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(out == """
            first_name,last_name,address,city,state,zip,mail_address,mail_city,mail_state,mail_zip
            JOHN,SMITH,1 ELM ST,AUSTIN,TX,78701,PO BOX 9,AUSTIN,TX,78767
            ,ACME HOLDINGS LLC,2 OAK ST,AUSTIN,TX,78702,10 MAIN ST STE 5,DALLAS,TX,75201
            MARY,JONES,3 ASH ST,AUSTIN,TX,78703,3 ASH ST,AUSTIN,TX,78703
            MARIA,DE LA CRUZ,4 PINE ST,AUSTIN,TX,78704,,,,

            """)
    }

    @Test func dropCowboyTakesDialablePhonesOnly() throws {
        let (result, out, rejects) = try export("dropcowboy", rules: try ProfileExportTests.rules())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(out == "phone,first_name,last_name,record_id\n+15125550101,JOHN,SMITH,K1\n", "\(out)")
        #expect(rejects.contains(#""line":2"#) && rejects.contains("phone: '512-555-01' is not a phone number a dialer can call"), "\(rejects)")
        #expect(result.stderr.contains(#""matched":3"#) && result.stderr.contains(#""suppressed_phones":1"#), "\(result.stderr)")
    }

    @Test func resendWritesJSONLines() throws {
        let (result, out, rejects) = try export("resend", rules: try ProfileExportTests.rules())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(out == #"{"to":"john.smith@example.com","first_name":"JOHN","variables":{"first_name":"JOHN","property_address":"1 ELM ST","property_city":"AUSTIN","record_id":"K1"}}"# + "\n", "\(out)")
        #expect(rejects.contains("'not an email' is not an email address"))
        #expect(result.stderr.contains(#""suppressed_emails":1"#), "\(result.stderr)")
    }

    @Test func lobMailsDNAMALeadsAndHonoursDoNotMail() throws {
        let (plain, all, _) = try export("lob", rules: nil)
        #expect(plain.status == 0)
        #expect(all.hasPrefix("name,address_line1,address_line2,address_city,address_state,address_zip,description\n"))
        #expect(all.contains("\"SMITH, JOHN A\",PO BOX 9,,AUSTIN,TX,78767,K1\n"), "the DNAMA lead is mailed at the address it keeps: \(all)")
        #expect(!all.contains("4 PINE ST"), "no mailing line, no letter")
        let (suppressed, out, _) = try export("lob", rules: try ProfileExportTests.rules())
        #expect(suppressed.status == 0 && !out.contains("PO BOX 9") && suppressed.stderr.contains(#""suppressed_addresses":1"#), "\(suppressed.stderr)")
    }

    @Test func buyerCSVIsTheTierFileLayoutForPickedPermits() throws {
        let dir = try Binaries.scratch("profile-permits")
        let permits = [
            #"{"permit_id":"P1","city":"Austin","property_address":"1 ELM ST","owner_name":"Ann","project_description":"=HYPERLINK(\"x\")","score":85,"tier":"A","trade_group":"luxury_outdoor","category":"pool","status":"new","contractor_name":"Blue Pools","contractor_phone":"+1 512-555-0199"}"#,
            #"{"permit_id":"P2","city":"Austin","property_address":"2 OAK ST","score":90,"tier":"A","trade_group":"luxury_outdoor","category":"pool","status":"sold"}"#,
            #"{"permit_id":"P3","city":"Austin","property_address":"3 ASH ST","score":55,"tier":"B","trade_group":"luxury_outdoor","category":"pool","status":"new"}"#,
        ]
        try (permits.joined(separator: "\n") + "\n").write(toFile: dir + "/permits.jsonl", atomically: true, encoding: .utf8)
        let result = try Binaries.run("lead-export", ["profile", "buyer-csv", "--input", "permits.jsonl", "--where", #"tier == "A""#, "-o", "pool-a.csv"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let out = try String(contentsOfFile: dir + "/pool-a.csv", encoding: .utf8)
        #expect(out == """
            permit_id,city,property_address,owner_name,project_description,market_value,days_old,is_absentee,score,tier,trade_group,category,reasoning,ideal_contractor,contact_priority,flags,scored_at,contractor_name,contractor_phone
            P1,Austin,1 ELM ST,Ann,"'=HYPERLINK(""x"")",,,,85,A,luxury_outdoor,pool,,,,,,Blue Pools,+1 512-555-0199

            """, "a sold permit and a tier B one stay out; the description is guarded, the phone is not: \(out)")
    }

    /// Leads go out to Tracerfy and its results come back into the master: phone, email and
    /// skipTraced in the leads they belong to, each change in status_history, and a result
    /// for an address the master does not have rejected rather than made a lead.
    @Test func skipTraceResultsComeBackIntoTheMaster() throws {
        let dir = try Binaries.scratch("skiptrace")
        let now = ["--now", "2026-11-23T06:00:00Z"]
        try "property_address,property_city,property_state,property_zip,owner_name\n1 Elm St,Austin,TX,78701,JOHN SMITH\n2 Oak St,Austin,TX,78702,MARY JONES\n"
            .write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        let flat = try Binaries.run("lead-flatten", ["csv", "list.csv", "-o", "list.jsonl"], in: dir)
        let master = try Binaries.run("lead-normalize", ["--dedupe", "--logs", "logs", "list.jsonl", "-o", "master.jsonl"] + now, in: dir)
        let upload = try Binaries.run("lead-export", ["profile", "tracerfy", "--input", "master.jsonl", "-o", "upload.csv"] + now, in: dir)
        #expect(flat.status == 0 && master.status == 0 && upload.status == 0, "\(master.stderr)\(upload.stderr)")
        // The result file echoes the upload and adds what the trace found.
        let uploaded = try String(contentsOfFile: dir + "/upload.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        var result = [uploaded[0] + ",primary_phone,primary_phone_type,primary_phone_dnc,email_1"]
        result.append(uploaded[1] + ",(512) 555-0101,Mobile,false,john@example.com")
        result.append(uploaded[2] + ",,,,")
        result.append("X,Y,9 Nowhere Ln,Austin,TX,78799,,,,,512-555-0199,Landline,true,")
        try (result.joined(separator: "\n") + "\n").write(toFile: dir + "/results.csv", atomically: true, encoding: .utf8)
        let later = ["--now", "2026-11-25T06:00:00Z"]
        let back = try Binaries.run("lead-flatten", ["leads", "--map", Binaries.repoRoot + "/stages/flatten/skiptrace-tracerfy.csv", "--logs", "logs",
                                                     "results.csv", "-o", "results.jsonl"] + later, in: dir)
        #expect(back.status == 0, "\(back.stderr)")
        let merged = try Binaries.run("lead-normalize", ["--dedupe", "--existing-only", "--master", "master.jsonl", "--logs", "logs",
                                                         "results.jsonl", "-o", "master.jsonl"] + later, in: dir)
        #expect(merged.status == 0 && merged.stderr.contains(#""master":2,"new":0"#) && merged.stderr.contains(#""not_in_master":1"#), "\(merged.stderr)")
        let leads = try String(contentsOfFile: dir + "/master.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(leads.count == 2)
        let john = try #require(leads.first { $0.contains("1 ELM ST") })
        #expect(john.contains(#""ownerPhone":"(512) 555-0101""#) && john.contains(#""ownerEmail":"john@example.com""#) && john.contains(#""skipTraced":true"#), "\(john)")
        #expect(john.contains(#"{"field":"ownerPhone","old":null,"new":"(512) 555-0101","at":"2026-11-25T06:00:00Z","by":"import:skiptrace-tracerfy"}"#), "\(john)")
        let mary = try #require(leads.first { $0.contains("2 OAK ST") })
        #expect(!mary.contains("555-01"), "an empty result fills nothing")
        let rejects = try String(contentsOfFile: dir + "/master.rejects.jsonl", encoding: .utf8)
        #expect(rejects.contains("9 NOWHERE LN") && rejects.contains("--existing-only"), "\(rejects)")
        // The phone goes on to the voicemail drop in E.164.
        let drop = try Binaries.run("lead-export", ["profile", "dropcowboy", "--input", "master.jsonl", "-o", "drop.csv"] + later, in: dir)
        let dropped = try String(contentsOfFile: dir + "/drop.csv", encoding: .utf8)
        #expect(drop.status == 0 && dropped.contains("+15125550101,JOHN,SMITH,"), "\(drop.stderr)\(dropped)")
    }

    @Test func anUnknownProfileNamesTheOthers() throws {
        let (result, _, _) = try export("fax", rules: nil)
        #expect(result.status == 2 && result.stderr.contains("tracerfy, dropcowboy, resend, lob, buyer-csv"), "\(result.stderr)")
    }
}
