//! Whether an endpoint's operating system still receives security updates, from the OS
//! platform, build and edition that the endpoint feed reports (Defender for Endpoint's
//! `osPlatform` and `osBuild`; the edition from the optional `os_edition` column), as of
//! a date (the snapshot's). Issue 12: "a lifecycle table that knows editions and ESU".
//!
//! [`TABLE`] is the whole table, one row per platform, build and edition class, each with
//! its end of support and the page it comes from. Change a date there and the join, the
//! charts and the device verdicts follow; nothing else encodes one. Dates are REFERENCE
//! §8.1, checked against Microsoft's lifecycle pages with the search tools (the closing
//! note of issue 12 says what was found).
//!
//! How a row is read, on the snapshot's day:
//! - on or before `end`: **supported**;
//! - after `end` and on or before `esu_end`: **supported only with ESU evidence**
//!   ([`Support::EsuOnly`]). Windows 10 22H2 (19045) ended on 14 Oct 2025; Extended
//!   Security Updates are bought per device, per year, and Defender for Endpoint's machine
//!   data cannot show them, so the inspector asks for the licence (`slmgr /dlv`);
//! - later: **unsupported**.
//!
//! Editions, by class (`telemetry::fields::edition_class`): builds 19044, 17763, 14393
//! and 10240 are supported only as long-term servicing editions (LTSC/LTSB, IoT LTSC):
//! the general-availability editions of the same build ended years earlier. When the
//! feed gives no edition (or one the table does not know), the row set for the build
//! is read for every edition: if they all agree, that is the answer (Windows 10 1607 is
//! unsupported in late 2026 whatever the edition); if not, **support unknown**
//! ([`Support::Unknown`]), never "supported".
//!
//! Always unsupported, whatever the build: Windows XP, Vista, 7, 8, 8.1, Server 2003,
//! 2008 and 2008 R2 (DSPT 8.1.4 names XP, Vista, 7, 8.1 and Server 2008, REFERENCE §2).
//! A Windows 10 build the table does not list is a general-availability release past its
//! end (1511 to 21H1); a Windows 11 build newer than the table knows is counted as
//! supported; anything else (Linux, macOS, mobile, a missing build) is not judged.

use chrono::NaiveDate;

/// What the lifecycle table says about one platform, build and edition on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    Unsupported,
    /// Past its end, inside the paid Extended Security Updates period: supported only
    /// on a device that has an ESU licence, which telemetry does not show.
    EsuOnly,
    /// Not a platform the table covers, a missing build, or an edition the answer
    /// depends on that the feed does not give.
    Unknown,
}

impl Support {
    /// The name the API and the charts use.
    pub fn name(self) -> &'static str {
        match self {
            Support::Supported => "supported",
            Support::Unsupported => "unsupported",
            Support::EsuOnly => "esu_only",
            Support::Unknown => "unknown",
        }
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// Normalised platform ([`normalise`]): `windows10`, `windows11`, `windowsserver2019`.
    pub platform: &'static str,
    /// `None`: every build of the platform.
    pub build: Option<i64>,
    /// Edition classes the row is for; empty: every edition.
    pub editions: &'static [&'static str],
    /// The last day of security updates.
    pub end: (i32, u32, u32),
    /// The last day of paid Extended Security Updates, if there are any.
    pub esu_end: Option<(i32, u32, u32)>,
    pub source: &'static str,
}

const GA: &[&str] = &["enterprise", "education", "pro", "home"];
const ENT: &[&str] = &["enterprise", "education"];
const CONSUMER: &[&str] = &["pro", "home"];
const LTSC: &[&str] = &["ltsc"];
const IOT: &[&str] = &["iot-ltsc"];
const ANY_LTSC: &[&str] = &["ltsc", "iot-ltsc"];

/// Every dated row. `source` is the Microsoft lifecycle page (under
/// `https://learn.microsoft.com/lifecycle/products/`) or the page named.
pub const TABLE: &[Row] = &[
    // Windows 10 22H2: end 14 Oct 2025; commercial ESU, per device and year, to 10 Oct 2028.
    Row {
        platform: "windows10",
        build: Some(19045),
        editions: &[],
        end: (2025, 10, 14),
        esu_end: Some((2028, 10, 10)),
        source: "windows-10-enterprise-and-education; windows-10-home-and-pro; learn.microsoft.com/windows/whats-new/extended-security-updates",
    },
    // Windows 10 21H2 (19044).
    Row {
        platform: "windows10",
        build: Some(19044),
        editions: ENT,
        end: (2024, 6, 11),
        esu_end: None,
        source: "windows-10-enterprise-and-education (21H2)",
    },
    Row {
        platform: "windows10",
        build: Some(19044),
        editions: CONSUMER,
        end: (2023, 6, 13),
        esu_end: None,
        source: "windows-10-home-and-pro (21H2)",
    },
    Row {
        platform: "windows10",
        build: Some(19044),
        editions: LTSC,
        end: (2027, 1, 12),
        esu_end: None,
        source: "windows-10-enterprise-ltsc-2021",
    },
    Row {
        platform: "windows10",
        build: Some(19044),
        editions: IOT,
        end: (2032, 1, 13),
        esu_end: None,
        source: "windows-10-iot-enterprise-ltsc-2021",
    },
    // Windows 10 1809 (17763): only the LTSC 2019 editions are still serviced.
    Row {
        platform: "windows10",
        build: Some(17763),
        editions: GA,
        end: (2021, 5, 11),
        esu_end: None,
        source: "windows-10-enterprise-and-education (1809)",
    },
    Row {
        platform: "windows10",
        build: Some(17763),
        editions: ANY_LTSC,
        end: (2029, 1, 9),
        esu_end: None,
        source: "windows-10-enterprise-ltsc-2019; windows-10-iot-enterprise-ltsc-2019",
    },
    // Windows 10 1607 (14393): LTSB 2016 only.
    Row {
        platform: "windows10",
        build: Some(14393),
        editions: GA,
        end: (2019, 4, 9),
        esu_end: None,
        source: "windows-10-enterprise-and-education (1607)",
    },
    Row {
        platform: "windows10",
        build: Some(14393),
        editions: ANY_LTSC,
        end: (2026, 10, 13),
        esu_end: None,
        source: "windows-10-enterprise-2016-ltsb; windows-10-iot-enterprise-ltsb-2016",
    },
    // Windows 10 1507 (10240): LTSB 2015 only.
    Row {
        platform: "windows10",
        build: Some(10240),
        editions: GA,
        end: (2017, 5, 9),
        esu_end: None,
        source: "windows-10-enterprise-and-education (1507)",
    },
    Row {
        platform: "windows10",
        build: Some(10240),
        editions: ANY_LTSC,
        end: (2025, 10, 14),
        esu_end: None,
        source: "windows-10-2015-ltsb",
    },
    // Windows 11, by release: Enterprise/Education get 36 months, Home/Pro 24.
    Row {
        platform: "windows11",
        build: Some(22000),
        editions: ENT,
        end: (2024, 10, 8),
        esu_end: None,
        source: "windows-11-enterprise-and-education (21H2)",
    },
    Row {
        platform: "windows11",
        build: Some(22000),
        editions: CONSUMER,
        end: (2023, 10, 10),
        esu_end: None,
        source: "windows-11-home-and-pro (21H2)",
    },
    Row {
        platform: "windows11",
        build: Some(22621),
        editions: ENT,
        end: (2025, 10, 14),
        esu_end: None,
        source: "windows-11-enterprise-and-education (22H2)",
    },
    Row {
        platform: "windows11",
        build: Some(22621),
        editions: CONSUMER,
        end: (2024, 10, 8),
        esu_end: None,
        source: "windows-11-home-and-pro (22H2)",
    },
    Row {
        platform: "windows11",
        build: Some(22631),
        editions: ENT,
        end: (2026, 11, 10),
        esu_end: None,
        source: "windows-11-enterprise-and-education (23H2)",
    },
    Row {
        platform: "windows11",
        build: Some(22631),
        editions: CONSUMER,
        end: (2025, 11, 11),
        esu_end: None,
        source: "windows-11-home-and-pro (23H2)",
    },
    Row {
        platform: "windows11",
        build: Some(26100),
        editions: ENT,
        end: (2027, 10, 12),
        esu_end: None,
        source: "windows-11-enterprise-and-education (24H2)",
    },
    Row {
        platform: "windows11",
        build: Some(26100),
        editions: CONSUMER,
        end: (2026, 10, 13),
        esu_end: None,
        source: "windows-11-home-and-pro (24H2)",
    },
    Row {
        platform: "windows11",
        build: Some(26100),
        editions: LTSC,
        end: (2029, 10, 9),
        esu_end: None,
        source: "windows-11-enterprise-ltsc-2024",
    },
    Row {
        platform: "windows11",
        build: Some(26100),
        editions: IOT,
        end: (2034, 10, 10),
        esu_end: None,
        source: "windows-11-iot-enterprise-ltsc-2024",
    },
    Row {
        platform: "windows11",
        build: Some(26200),
        editions: ENT,
        end: (2028, 10, 10),
        esu_end: None,
        source: "windows-11-enterprise-and-education (25H2)",
    },
    Row {
        platform: "windows11",
        build: Some(26200),
        editions: CONSUMER,
        end: (2027, 10, 12),
        esu_end: None,
        source: "windows-11-home-and-pro (25H2)",
    },
    // Servers, extended support, any build.
    Row {
        platform: "windowsserver2012",
        build: None,
        editions: &[],
        end: (2023, 10, 10),
        esu_end: None,
        source: "windows-server-2012",
    },
    Row {
        platform: "windowsserver2012r2",
        build: None,
        editions: &[],
        end: (2023, 10, 10),
        esu_end: None,
        source: "windows-server-2012-r2",
    },
    Row {
        platform: "windowsserver2016",
        build: None,
        editions: &[],
        end: (2027, 1, 12),
        esu_end: None,
        source: "windows-server-2016",
    },
    Row {
        platform: "windowsserver2019",
        build: None,
        editions: &[],
        end: (2029, 1, 9),
        esu_end: None,
        source: "windows-server-2019",
    },
    Row {
        platform: "windowsserver2022",
        build: None,
        editions: &[],
        end: (2031, 10, 14),
        esu_end: None,
        source: "windows-server-2022",
    },
    Row {
        platform: "windowsserver2025",
        build: None,
        editions: &[],
        end: (2034, 11, 14),
        esu_end: None,
        source: "windows-server-2025 (revised in 2026 from the pre-release 10 Oct 2034)",
    },
];

/// Platforms out of support whatever their build (REFERENCE §2, DSPT 8.1.4).
const ALWAYS_UNSUPPORTED: &[&str] = &[
    "windowsxp",
    "windowsvista",
    "windows7",
    "windows8",
    "windows8.1",
    "windows81",
    "windows8blue",
    "windowsserver2003",
    "windowsserver2003r2",
    "windowsserver2008",
    "windowsserver2008r2",
];

/// The newest Windows 11 build in the table: a newer one is a release we have not listed.
const NEWEST_WINDOWS11: i64 = 26200;

fn date((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date in the lifecycle table")
}

/// `WindowsServer2019`, `Windows Server 2019`, `windows_server_2019` all become
/// `windowsserver2019`.
fn normalise(platform: &str) -> String {
    platform
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Row {
    fn on(&self, day: NaiveDate) -> Support {
        if day <= date(self.end) {
            Support::Supported
        } else if self.esu_end.is_some_and(|e| day <= date(e)) {
            Support::EsuOnly
        } else {
            Support::Unsupported
        }
    }
}

/// Whether the table judges `platform` at all (Windows client and server); anything
/// else (Linux, macOS, mobile, unknown) is outside `endpoints.unsupported_os`.
pub fn covers(platform: &str) -> bool {
    let p = normalise(platform);
    ALWAYS_UNSUPPORTED.contains(&p.as_str()) || TABLE.iter().any(|r| r.platform == p)
}

/// Whether `platform` at `build`, of edition class `edition` (`None`: not given),
/// receives security updates on `on`.
pub fn support(
    platform: &str,
    build: Option<i64>,
    edition: Option<&str>,
    on: NaiveDate,
) -> Support {
    let p = normalise(platform);
    if ALWAYS_UNSUPPORTED.contains(&p.as_str()) {
        return Support::Unsupported;
    }
    let rows: Vec<&Row> = TABLE
        .iter()
        .filter(|r| r.platform == p && (r.build.is_none() || r.build == build))
        .collect();
    if rows.is_empty() {
        return match (p.as_str(), build) {
            ("windows10" | "windows11", None) => Support::Unknown,
            ("windows11", Some(b)) if b > NEWEST_WINDOWS11 => Support::Supported,
            ("windows10" | "windows11", Some(_)) => Support::Unsupported,
            _ => Support::Unknown,
        };
    }
    let known_edition = edition.filter(|e| rows.iter().any(|r| r.editions.contains(e)));
    let candidates: Vec<&&Row> = match known_edition {
        Some(e) => rows
            .iter()
            .filter(|r| r.editions.is_empty() || r.editions.contains(&e))
            .collect(),
        // No edition, or one no row of the build names: every row of the build.
        None => rows.iter().collect(),
    };
    let mut answers = candidates.iter().map(|r| r.on(on));
    let first = answers.next().unwrap_or(Support::Unknown);
    if answers.all(|a| a == first) {
        first
    } else {
        Support::Unknown
    }
}

/// The Windows build number in what an inspector wrote down from a screen: the number
/// after the word "build" ("Enterprise LTSC 2019, 1809, build 17763.6414" gives 17763),
/// else the third part of a dotted version ("10.0.19045.4894" gives 19045, "6.1.7601"
/// gives 7601), else the first five-digit number ("Windows 10 Pro 22H2 19045"). Years and
/// version names (2019, 1809, 22H2) are never taken for builds.
pub fn build_in_text(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let number_at = |s: &str| -> Option<i64> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty() && digits.len() <= 6)
            .then(|| digits.parse().ok())
            .flatten()
    };
    if let Some(at) = lower.find("build") {
        let rest = lower[at + "build".len()..].trim_start_matches([' ', ':', '#']);
        if let Some(n) = number_at(rest) {
            return Some(n);
        }
    }
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .collect();
    for w in &words {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() >= 3 && parts[..3].iter().all(|p| number_at(p).is_some()) {
            return number_at(parts[2]);
        }
    }
    words
        .iter()
        .find(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> NaiveDate {
        day(2026, 11, 29)
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        date((y, m, d))
    }

    #[test]
    fn old_platforms_are_out_of_support_whatever_the_build() {
        for p in ["Windows7", "WindowsXP", "Windows8.1", "WindowsServer2008R2"] {
            assert_eq!(
                support(p, Some(7601), None, on()),
                Support::Unsupported,
                "{p}"
            );
            assert_eq!(
                support(p, None, Some("ltsc"), on()),
                Support::Unsupported,
                "{p}"
            );
        }
    }

    #[test]
    fn windows10_22h2_is_supported_only_with_esu_evidence() {
        let w = |d| support("Windows10", Some(19045), None, d);
        assert_eq!(w(day(2025, 10, 14)), Support::Supported, "its last day");
        assert_eq!(w(day(2025, 10, 15)), Support::EsuOnly);
        assert_eq!(w(on()), Support::EsuOnly, "whatever the edition");
        assert_eq!(w(day(2028, 10, 11)), Support::Unsupported, "ESU over");
        assert_eq!(
            support("Windows10", Some(19045), Some("pro"), on()),
            Support::EsuOnly
        );
    }

    /// Issue 12: "19044, 17763 and 14393 are supported only as LTSC/LTSB/IoT editions
    /// with their own end dates; an unknown edition on such a build is support unknown".
    #[test]
    fn long_term_builds_are_supported_only_in_their_long_term_editions() {
        let w = |b, e| support("Windows10", Some(b), e, on());
        assert_eq!(
            w(19044, Some("pro")),
            Support::Unsupported,
            "21H2 Pro ended 2023"
        );
        assert_eq!(
            w(19044, Some("enterprise")),
            Support::Unsupported,
            "ended 2024"
        );
        assert_eq!(
            w(19044, Some("ltsc")),
            Support::Supported,
            "LTSC 2021 to Jan 2027"
        );
        assert_eq!(
            w(19044, Some("iot-ltsc")),
            Support::Supported,
            "IoT LTSC 2021 to 2032"
        );
        assert_eq!(
            w(19044, None),
            Support::Unknown,
            "no edition: support unknown"
        );
        assert_eq!(w(19044, Some("other")), Support::Unknown);
        assert_eq!(
            support("Windows10", Some(19044), Some("ltsc"), day(2027, 1, 13)),
            Support::Unsupported,
            "LTSC 2021 ended"
        );
        assert_eq!(w(17763, Some("ltsc")), Support::Supported);
        assert_eq!(w(17763, Some("education")), Support::Unsupported);
        assert_eq!(w(17763, None), Support::Unknown);
        assert_eq!(
            w(14393, None),
            Support::Unsupported,
            "every 1607 edition has ended"
        );
        assert_eq!(
            support("Windows10", Some(14393), None, day(2026, 6, 1)),
            Support::Unknown,
            "the date decides: LTSB 2016 was serviced until Oct 2026"
        );
        for b in [
            10586, 15063, 16299, 17134, 18362, 18363, 19041, 19042, 19043,
        ] {
            assert_eq!(w(b, Some("ltsc")), Support::Unsupported, "build {b}");
        }
        assert_eq!(support("Windows10", None, None, on()), Support::Unknown);
    }

    #[test]
    fn windows11_and_server_follow_their_dates_and_other_platforms_are_not_judged() {
        let w = |b, e| support("Windows11", Some(b), e, on());
        assert_eq!(
            w(22631, None),
            Support::Unsupported,
            "23H2 ended for every edition"
        );
        assert_eq!(w(26100, Some("enterprise")), Support::Supported);
        assert_eq!(
            w(26100, Some("pro")),
            Support::Unsupported,
            "24H2 Pro ended Oct 2026"
        );
        assert_eq!(w(26100, None), Support::Unknown);
        assert_eq!(w(26200, None), Support::Supported);
        assert_eq!(w(27000, None), Support::Supported);
        assert_eq!(
            support("Windows Server 2012 R2", Some(9600), None, on()),
            Support::Unsupported
        );
        assert_eq!(
            support("WindowsServer2019", Some(17763), None, on()),
            Support::Supported
        );
        assert_eq!(support("Linux", Some(5), None, on()), Support::Unknown);
        assert_eq!(support("macOS", None, None, on()), Support::Unknown);
    }

    #[test]
    fn every_row_has_a_source_and_valid_dates() {
        for r in TABLE {
            assert!(!r.source.is_empty());
            let end = date(r.end);
            if let Some(e) = r.esu_end {
                assert!(date(e) > end);
            }
        }
    }

    #[test]
    fn the_build_is_read_from_what_an_inspector_wrote() {
        assert_eq!(
            build_in_text("Enterprise LTSC 2019, 1809, build 17763.6414"),
            Some(17763)
        );
        assert_eq!(build_in_text("10.0.19045.4894"), Some(19045));
        assert_eq!(build_in_text("Windows 10 Pro 22H2 19045"), Some(19045));
        assert_eq!(build_in_text("Windows 7 SP1 (6.1.7601)"), Some(7601));
        assert_eq!(
            build_in_text("Windows 10 Enterprise 21H2, build 19044.3086"),
            Some(19044)
        );
        assert_eq!(build_in_text("LTSC 2019"), None);
        assert_eq!(build_in_text("not written down"), None);
    }
}
