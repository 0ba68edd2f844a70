//! Checklist loading from files: the shipped checklists, error reports with lines,
//! templates and pins.

use std::path::{Path, PathBuf};

use wardcheck_core::checklist::{
    self, Checklist, ChecklistError, MAX_FILE_BYTES, Scope, TelemetryCheck,
};

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../checklists")
        .join(file)
}

fn load_shipped(file: &str) -> Checklist {
    checklist::load_file(&shipped(file)).unwrap_or_else(|e| panic!("{file} must load:\n{e}"))
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn errors(result: Result<Checklist, checklist::ChecklistErrors>) -> Vec<ChecklistError> {
    match result {
        Ok(c) => panic!("expected errors, but {} loaded", c.id),
        Err(e) => e.0,
    }
}

/// The error on this file and line whose field and message contain the given parts.
fn find<'a>(
    errors: &'a [ChecklistError],
    file_suffix: &str,
    line: usize,
    field: &str,
    message_part: &str,
) -> Option<&'a ChecklistError> {
    errors.iter().find(|e| {
        e.file.ends_with(file_suffix)
            && e.line == line
            && e.field == field
            && e.message.contains(message_part)
    })
}

// ---------------------------------------------------------------------------------------
// The shipped checklists

#[test]
fn ndg_checklist_covers_all_ten_standards() {
    let c = load_shipped("dspt-ndg.toml");
    let items = c.items().count();
    assert!(
        items >= 40,
        "dspt-ndg has {items} items; at least 40 wanted"
    );
    for standard in 1..=10u8 {
        let section_id = format!("ndg{standard}");
        let section = c
            .sections
            .iter()
            .find(|s| s.id == section_id)
            .unwrap_or_else(|| panic!("no section for NDG standard {standard}"));
        assert!(
            section.items.iter().all(|i| i.refs.ndg == Some(standard)),
            "every item in {section_id} cites NDG standard {standard}"
        );
    }
    assert_eq!(c.sections.len(), 10, "one section per standard");
    let (_, alerts) = c
        .item("ndg6-cyber-alerts-48h")
        .expect("the 48-hour alert item");
    assert_eq!(
        alerts.telemetry,
        Some(TelemetryCheck::AlertsUnacknowledged48h)
    );
    assert_eq!(
        alerts.refs.caf.as_deref(),
        Some("B4.d"),
        "acting on NHS cyber alerts is vulnerability management (REFERENCE §8.2)"
    );
    assert_eq!(alerts.refs.dspt, None, "no GP (Category 4) numbering");
    let (_, unsupported) = c
        .item("ndg8-no-unsupported")
        .expect("the unsupported systems item");
    assert_eq!(
        unsupported.telemetry,
        Some(TelemetryCheck::EndpointsUnsupportedOs)
    );
    assert!(
        c.items()
            .filter(|(_, i)| i.refs.kloe.as_deref() == Some("W6.7"))
            .count()
            >= 40,
        "the NDG items answer the well-led KLOE W6.7"
    );
}

#[test]
fn windows_checklist_is_device_scope_and_says_how_to_observe() {
    let c = load_shipped("windows10-endpoint.toml");
    let items = c.items().count();
    assert!(
        items >= 15,
        "windows10-endpoint has {items} items; at least 15 wanted"
    );
    for (section, item) in c.items() {
        assert_eq!(
            section.scope,
            Scope::Device,
            "{} is a device check",
            item.id
        );
        assert!(item.observe.is_some(), "{} says how to observe it", item.id);
    }
    let (_, smb1) = c.item("w10-smb1-disabled").unwrap();
    assert!(smb1.observe.as_deref().unwrap().contains("SMB1Protocol"));
    assert_eq!(smb1.telemetry, Some(TelemetryCheck::EndpointsSmb1Enabled));
}

#[test]
fn firewall_checklist_has_the_boundary_items() {
    let c = load_shipped("firewall-boundary.toml");
    let items = c.items().count();
    assert!(
        items >= 15,
        "firewall-boundary has {items} items; at least 15 wanted"
    );
    assert!(c.sections.iter().all(|s| s.scope == Scope::Inspection));
    let (_, firmware) = c.item("fw-firmware-supported").unwrap();
    assert_eq!(
        firmware.telemetry,
        Some(TelemetryCheck::FirewallsUnsupportedFirmware)
    );
    assert!(
        c.items()
            .filter(|(_, i)| i.refs.cyber_essentials.as_deref() == Some("firewalls"))
            .count()
            >= 6,
        "the Cyber Essentials firewall requirements are covered"
    );
}

#[test]
fn cqc_template_resolves_the_others_by_reference() {
    let template = load_shipped("cqc-onsite-cyber.toml");
    let ndg = load_shipped("dspt-ndg.toml");
    let firewall = load_shipped("firewall-boundary.toml");
    let windows = load_shipped("windows10-endpoint.toml");
    let governance = load_shipped("trust-governance.toml");
    let expected: usize = [&ndg, &firewall, &windows, &governance]
        .iter()
        .map(|c| c.items().count())
        .sum();
    assert_eq!(
        template.items().count(),
        expected,
        "the template takes every section"
    );
    for section in &template.sections {
        let source = [&ndg, &firewall, &windows, &governance]
            .into_iter()
            .find(|c| c.id == section.source)
            .unwrap_or_else(|| panic!("section {} has an unknown source", section.id));
        let original = source.sections.iter().find(|s| s.id == section.id).unwrap();
        assert_eq!(
            section, original,
            "{} is the included section, unchanged",
            section.id
        );
    }
    assert_eq!(
        template.sections[0].source, "dspt-ndg",
        "include order is kept"
    );
    let device: Vec<&str> = template
        .sections
        .iter()
        .filter(|s| s.scope == Scope::Device)
        .map(|s| s.source.as_str())
        .collect();
    assert!(
        !device.is_empty() && device.iter().all(|s| *s == "windows10-endpoint"),
        "the Windows sections keep their device scope: {device:?}"
    );
}

#[test]
fn bundled_checklists_are_the_files_on_disk() {
    let bundled = checklist::bundled();
    assert_eq!(bundled.len(), 6);
    for c in &bundled {
        let on_disk = load_shipped(&format!("{}.toml", c.id));
        assert_eq!(c.pin, on_disk.pin, "embedded {} matches the file", c.id);
    }
    let summaries = checklist::bundled_summaries();
    assert!(
        summaries.contains(&"cqc-onsite-cyber@2026.1".to_owned()),
        "{summaries:?}"
    );
}

/// Issue 12: every item cites at least one framework, and every CAF-aligned DSPT outcome
/// is cited by a shipped item or listed in the README as deliberately not covered.
#[test]
fn every_caf_outcome_is_covered_or_listed_as_not() {
    let mut cited = std::collections::BTreeSet::new();
    for c in checklist::bundled() {
        for (_, item) in c.items() {
            let r = &item.refs;
            assert!(
                r.caf.is_some() || r.ndg.is_some() || r.kloe.is_some() || r.cis.is_some(),
                "{} cites a framework",
                item.id
            );
            cited.extend(r.caf.clone());
        }
    }
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../checklists/README.md"),
    )
    .unwrap();
    let section = readme
        .split("### CAF outcomes not covered")
        .nth(1)
        .expect("the README lists the outcomes not covered")
        .split("\n### ")
        .next()
        .unwrap();
    let listed: std::collections::BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let all = checklist::caf_outcomes();
    for o in &all {
        assert!(
            cited.contains(o) || listed.contains(o),
            "{o} is neither cited by a shipped item nor listed as not covered"
        );
        assert!(
            !(cited.contains(o) && listed.contains(o)),
            "{o} is cited and also listed as not covered: take it off the list"
        );
    }
    for o in &listed {
        assert!(all.contains(o), "{o} in the README is not an outcome");
    }
}

/// Issue 12: an ambulance trust's inspection holds the ambulance section and an acute
/// trust's does not; the trauma centre section only at a major trauma centre.
#[test]
fn sections_apply_by_trust_type_and_trauma_centre() {
    use checklist::{Org, OrgType};
    let c = checklist::bundled()
        .into_iter()
        .find(|c| c.id == "cqc-onsite-cyber")
        .unwrap();
    let held = |org: Option<Org>| -> Vec<String> {
        c.sections
            .iter()
            .filter(|s| s.applies(org.as_ref()))
            .map(|s| s.id.clone())
            .collect()
    };
    let org = |kind, mtc| {
        Some(Org {
            kind,
            major_trauma_centre: mtc,
        })
    };
    let ambulance = held(org(OrgType::Ambulance, false));
    let acute = held(org(OrgType::Acute, false));
    let mtc = held(org(OrgType::Acute, true));
    assert!(ambulance.contains(&"amb-operations".to_owned()));
    assert!(!acute.contains(&"amb-operations".to_owned()));
    assert!(!acute.contains(&"mtc-critical-services".to_owned()));
    assert!(mtc.contains(&"mtc-critical-services".to_owned()));
    assert!(!ambulance.contains(&"mtc-critical-services".to_owned()));
    assert_eq!(
        held(None).len(),
        c.sections.len(),
        "unknown org: every section"
    );
}

// ---------------------------------------------------------------------------------------
// Error reports

/// A checklist with four problems, each on a known line.
const BAD_CHECKLIST: &str = r#"id = "bad"
version = "1"
title = "Bad"
applies_to = ["acute"]

[[sections]]
id = "one"
title = "One"

[[sections.items]]
id = "one-a"
prompt = "First"
guidance = "Look."
answer = "compliance"
severity = "low"
telemetry = "endpoints.unicorns"

[[sections.items]]
id = "one-a"
prompt = "Same id again"
guidance = "Look."
answer = "compliance"
severity = "low"

[[sections.items]]
id = "one-b"
guidance = "No prompt."
answer = "compliance"
severity = "low"
refs = { ndg = 11 }
"#;

#[test]
fn every_problem_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.toml", BAD_CHECKLIST);
    let template = write(
        dir.path(),
        "tpl.toml",
        r#"id = "tpl"
version = "1"
title = "Template"
applies_to = ["acute"]

[[include]]
file = "bad.toml"
sections = ["one", "two"]
"#,
    );
    let errors = errors(checklist::load_file(&template));
    let expected = [
        (
            "tpl.toml",
            8,
            "include[#1].sections",
            "has no section 'two'",
        ),
        (
            "bad.toml",
            16,
            "sections[one].items[one-a].telemetry",
            "unknown telemetry check",
        ),
        (
            "bad.toml",
            19,
            "sections[one].items[one-a].id",
            "duplicate item id 'one-a'",
        ),
        (
            "bad.toml",
            25,
            "sections[one].items[one-b].prompt",
            "missing",
        ),
        (
            "bad.toml",
            30,
            "sections[one].items[one-b].refs.ndg",
            "NDG standard 11",
        ),
    ];
    for (file, line, field, message) in expected {
        assert!(
            find(&errors, file, line, field, message).is_some(),
            "expected {file}:{line}: {field}: ...{message}... in:\n{}",
            checklist::ChecklistErrors(errors.clone())
        );
    }
    assert_eq!(
        errors.len(),
        expected.len(),
        "no other problems: {errors:#?}"
    );
    let shown = checklist::ChecklistErrors(errors).to_string();
    assert!(
        shown.lines().any(|l| l.ends_with("bad.toml:19: sections[one].items[one-a].id: duplicate item id 'one-a' (first used on line 11)")),
        "displayed as file:line: field: message, one per line:\n{shown}"
    );
}

#[test]
fn syntax_errors_report_their_lines() {
    // Line 3 has an unterminated string, line 5 a key with no value.
    let text = "id = \"x\"\nversion = \"1\"\ntitle = \"T\napplies_to = [\"acute\"]\nscope =\n";
    let errors = errors(checklist::load_str("broken.toml", text, None));
    assert!(
        errors
            .iter()
            .all(|e| e.field == "syntax" && e.file == "broken.toml"),
        "nothing but syntax errors is reported for a file that does not parse: {errors:?}"
    );
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert!(
        lines.contains(&3),
        "the unterminated string on line 3: {errors:?}"
    );
    assert!(
        lines.contains(&5),
        "the missing value on line 5: {errors:?}"
    );
    assert!(
        checklist::ChecklistErrors(errors)
            .to_string()
            .starts_with("broken.toml:3: syntax: "),
        "shown as file:line"
    );
}

#[test]
fn unreadable_and_oversized_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = errors(checklist::load_file(&dir.path().join("nope.toml")));
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].line, 0, "a whole-file problem has no line");
    assert!(missing[0].message.contains("cannot read"), "{missing:?}");

    let big = write(dir.path(), "big.toml", &"#".repeat(MAX_FILE_BYTES + 1));
    let too_big = errors(checklist::load_file(&big));
    assert!(too_big[0].message.contains("limit"), "{too_big:?}");
}

#[test]
fn include_of_a_missing_file_is_reported_on_the_include_line() {
    let dir = tempfile::tempdir().unwrap();
    let template = write(
        dir.path(),
        "tpl.toml",
        "id = \"tpl\"\nversion = \"1\"\ntitle = \"T\"\napplies_to = [\"acute\"]\n\n[[include]]\nfile = \"gone.toml\"\nsections = \"all\"\n",
    );
    let errors = errors(checklist::load_file(&template));
    assert!(
        find(
            &errors,
            "tpl.toml",
            7,
            "include[#1].file",
            "cannot include 'gone.toml'"
        )
        .is_some(),
        "{errors:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Templates and pins

const DEVICE_CHECKLIST: &str = r#"id = "dev"
version = "3"
title = "Device checks"
applies_to = ["acute", "community"]
scope = "device"

[[sections]]
id = "d1"
title = "D1"

[[sections.items]]
id = "d1-a"
prompt = "SMBv1 off?"
guidance = "Look."
observe = "Get-SmbServerConfiguration"
answer = "compliance"
evidence = ["photo", "sampled-device"]
severity = "critical"
telemetry = "endpoints.smb1_enabled"

[[sections]]
id = "d2"
title = "D2"

[[sections.items]]
id = "d2-a"
prompt = "Build?"
guidance = "Record it."
observe = "winver"
answer = "text"
severity = "low"
"#;

const SITE_CHECKLIST: &str = r#"id = "site"
version = "1"
title = "Site checks"
applies_to = ["acute"]

[[sections]]
id = "s1"
title = "S1"

[[sections.items]]
id = "s1-a"
prompt = "Register?"
guidance = "Look."
answer = "compliance"
severity = "high"
refs = { ndg = 9, dspt = "9.3.8" }
"#;

const TEMPLATE: &str = r#"id = "visit"
version = "1"
title = "Visit"
applies_to = ["acute"]

[[include]]
file = "site.toml"
sections = "all"

[[include]]
file = "sub/dev.toml"
sections = ["d2"]
"#;

fn template_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(dir.path(), "site.toml", SITE_CHECKLIST);
    write(&dir.path().join("sub"), "dev.toml", DEVICE_CHECKLIST);
    write(dir.path(), "visit.toml", TEMPLATE);
    dir
}

#[test]
fn template_sections_keep_their_source_and_scope() {
    let dir = template_dir();
    let visit = checklist::load_file(&dir.path().join("visit.toml")).unwrap();
    let got: Vec<(&str, &str, Scope)> = visit
        .sections
        .iter()
        .map(|s| (s.id.as_str(), s.source.as_str(), s.scope))
        .collect();
    assert_eq!(
        got,
        [
            ("s1", "site", Scope::Inspection),
            ("d2", "dev", Scope::Device)
        ]
    );
    assert!(
        visit.item("d1-a").is_none(),
        "only the named sections are taken"
    );
    assert_eq!(visit.pin.id, "visit");
    assert_eq!(visit.pin.version, "1");
}

#[test]
fn duplicate_ids_across_included_files_are_reported() {
    let dir = template_dir();
    // The device checklist now reuses the site checklist's item id.
    write(
        &dir.path().join("sub"),
        "dev.toml",
        &DEVICE_CHECKLIST.replace("d2-a", "s1-a"),
    );
    let errors = errors(checklist::load_file(&dir.path().join("visit.toml")));
    assert!(
        find(
            &errors,
            "visit.toml",
            10,
            "include[#2].sections",
            "item 's1-a'"
        )
        .is_some(),
        "{errors:?}"
    );
    let message = &errors[0].message;
    assert!(
        message.contains("dev.toml:26") && message.contains("site.toml:11"),
        "both places are named: {message}"
    );
}

#[test]
fn pin_changes_when_any_byte_changes() {
    let a = checklist::load_str("a.toml", SITE_CHECKLIST, None).unwrap();
    let same = checklist::load_str("elsewhere.toml", SITE_CHECKLIST, None).unwrap();
    assert_eq!(
        a.pin, same.pin,
        "the pin depends on the bytes, not the name"
    );
    let edited = SITE_CHECKLIST.replace("Look.", "Look!");
    let b = checklist::load_str("a.toml", &edited, None).unwrap();
    assert_ne!(
        a.pin.sha256, b.pin.sha256,
        "one changed byte changes the pin"
    );
    let trailing = format!("{SITE_CHECKLIST}# comment\n");
    let c = checklist::load_str("a.toml", &trailing, None).unwrap();
    assert_ne!(a.pin.sha256, c.pin.sha256, "even a comment changes the pin");

    // A template's pin covers the files it includes.
    let dir = template_dir();
    let before = checklist::load_file(&dir.path().join("visit.toml"))
        .unwrap()
        .pin;
    write(dir.path(), "site.toml", &edited);
    let after = checklist::load_file(&dir.path().join("visit.toml"))
        .unwrap()
        .pin;
    assert_ne!(
        before.sha256, after.sha256,
        "editing an included file changes the template's pin"
    );

    // And it is the documented hash: template bytes, then each include in order.
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(TEMPLATE.as_bytes());
    hasher.update(edited.as_bytes());
    hasher.update(DEVICE_CHECKLIST.as_bytes());
    assert_eq!(after.sha256, hex::encode(hasher.finalize()));
}

#[test]
fn template_that_includes_a_template_is_refused() {
    let dir = template_dir();
    let outer = write(
        dir.path(),
        "outer.toml",
        "id = \"outer\"\nversion = \"1\"\ntitle = \"O\"\napplies_to = [\"acute\"]\n\n[[include]]\nfile = \"visit.toml\"\nsections = \"all\"\n",
    );
    let errors = errors(checklist::load_file(&outer));
    assert!(
        find(
            &errors,
            "outer.toml",
            7,
            "include[#1].file",
            "itself a template"
        )
        .is_some(),
        "{errors:?}"
    );
}

#[test]
fn template_for_an_org_type_its_includes_do_not_cover_is_refused() {
    let dir = template_dir();
    write(
        dir.path(),
        "visit.toml",
        &TEMPLATE.replace("[\"acute\"]", "[\"acute\", \"ambulance\"]"),
    );
    let errors = errors(checklist::load_file(&dir.path().join("visit.toml")));
    assert!(
        find(
            &errors,
            "visit.toml",
            7,
            "include[#1].file",
            "does not apply to ambulance"
        )
        .is_some(),
        "{errors:?}"
    );
    assert!(
        find(
            &errors,
            "visit.toml",
            11,
            "include[#2].file",
            "does not apply to ambulance"
        )
        .is_some(),
        "{errors:?}"
    );
}
