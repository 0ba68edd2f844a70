//! Whether an endpoint's operating system still receives security updates, from the OS
//! platform and build that the endpoint feed reports (Defender for Endpoint's
//! `osPlatform` and `osBuild`), as of a date (the snapshot's).
//!
//! The table is REFERENCE §4 plus Microsoft's published lifecycle dates. Every date below
//! is marked: **[C]** confirmed in REFERENCE, **[U]** background knowledge not checked
//! against a source (verify before relying on it), **[A]** an assumption we make on
//! purpose. Change a date here and the join follows; nothing else encodes it.
//!
//! - Windows XP, Vista, 7, 8, 8.1, Server 2003, 2008 and 2008 R2: out of support (DSPT 8.1.4
//!   names XP, Vista, 7, 8.1 and Server 2008 **[C]**). Server 2012 and 2012 R2 ended
//!   10 Oct 2023 **[U]**.
//! - Windows 10, by build: long-term servicing builds 14393 (LTSB 2016), 17763 (LTSC 2019)
//!   and 19044 (LTSC 2021) **[C]** until their LTSC end dates **[U]**; 10240 (LTSB 2015)
//!   until 14 Oct 2025 **[U]**; 19045 (22H2) left general support on 14 Oct 2025 **[U]**
//!   but is counted as supported until 10 Oct 2028 **[A]**: we assume NHS Windows 10
//!   devices are enrolled in Microsoft's paid Extended Security Updates (up to three
//!   years). Every other Windows 10 build (1511-21H1: 10586-19043) is out of support.
//!   The feed does not say whether a 14393, 17763 or 19044 device runs the LTSC edition;
//!   we count those builds as supported, as the brief for the join asks, and the
//!   inspector checks the edition on a sampled device (checklist item `w10-os-supported`).
//! - Windows 11 (Enterprise and Education dates), by build: 22000 (21H2) until 8 Oct 2024,
//!   22621 (22H2) until 14 Oct 2025, 22631 (23H2) until 10 Nov 2026, 26100 (24H2) until
//!   12 Oct 2027, 26200 (25H2) until 10 Oct 2028 **[U]**; a build newer than the table
//!   knows is counted as supported.
//! - Windows Server 2016 until 12 Jan 2027, 2019 until 9 Jan 2029, 2022 until 14 Oct 2031,
//!   2025 until 10 Oct 2034 **[U]** (extended support).
//! - Anything else (Linux, macOS, mobile, an unknown or missing platform or build) is not
//!   judged: it is neither counted as unsupported nor as supported, and the join says how
//!   many endpoints it could not judge.

use chrono::NaiveDate;

/// What the lifecycle table says about one platform and build on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    Unsupported,
    /// Not a platform the table covers, or the build is missing.
    Unknown,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date in the lifecycle table")
}

/// Windows 10 builds still serviced, with the day support ends.
fn windows10_end(build: i64) -> Option<NaiveDate> {
    match build {
        10240 => Some(date(2025, 10, 14)), // LTSB 2015 [U]
        14393 => Some(date(2026, 10, 13)), // LTSB 2016 [U]
        17763 => Some(date(2029, 1, 9)),   // LTSC 2019 [U]
        19044 => Some(date(2027, 1, 12)),  // LTSC 2021 [U]
        19045 => Some(date(2028, 10, 10)), // 22H2 with Extended Security Updates [A]
        _ => None,
    }
}

/// Windows 11 builds, with the day support ends (Enterprise and Education).
fn windows11_end(build: i64) -> Option<NaiveDate> {
    match build {
        22000 => Some(date(2024, 10, 8)),  // 21H2 [U]
        22621 => Some(date(2025, 10, 14)), // 22H2 [U]
        22631 => Some(date(2026, 11, 10)), // 23H2 [U]
        26100 => Some(date(2027, 10, 12)), // 24H2 [U]
        26200 => Some(date(2028, 10, 10)), // 25H2 [U]
        _ => None,
    }
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

/// Whether `platform` at `build` receives security updates on `on`.
pub fn support(platform: &str, build: Option<i64>, on: NaiveDate) -> Support {
    let p = normalise(platform);
    let until = |end: NaiveDate| {
        if on <= end {
            Support::Supported
        } else {
            Support::Unsupported
        }
    };
    match p.as_str() {
        "windowsxp"
        | "windowsvista"
        | "windows7"
        | "windows8"
        | "windows8.1"
        | "windows81"
        | "windows8blue"
        | "windowsserver2003"
        | "windowsserver2003r2"
        | "windowsserver2008"
        | "windowsserver2008r2" => Support::Unsupported,
        "windowsserver2012" | "windowsserver2012r2" => until(date(2023, 10, 10)),
        "windowsserver2016" => until(date(2027, 1, 12)),
        "windowsserver2019" => until(date(2029, 1, 9)),
        "windowsserver2022" => until(date(2031, 10, 14)),
        "windowsserver2025" => until(date(2034, 10, 10)),
        "windows10" => match build {
            None => Support::Unknown,
            Some(b) => windows10_end(b).map_or(Support::Unsupported, until),
        },
        "windows11" => match build {
            None => Support::Unknown,
            Some(b) => match windows11_end(b) {
                Some(end) => until(end),
                // Newer than the table: a release we have not listed yet.
                None if b > 26200 => Support::Supported,
                None => Support::Unsupported,
            },
        },
        _ => Support::Unknown,
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
        date(2026, 11, 29)
    }

    #[test]
    fn old_platforms_are_out_of_support_whatever_the_build() {
        for p in ["Windows7", "WindowsXP", "Windows8.1", "WindowsServer2008R2"] {
            assert_eq!(support(p, Some(7601), on()), Support::Unsupported, "{p}");
            assert_eq!(support(p, None, on()), Support::Unsupported, "{p}");
        }
    }

    #[test]
    fn windows10_builds_before_19044_are_out_of_support_except_long_term_servicing() {
        let w10 = |b| support("Windows10", Some(b), on());
        for b in [
            10586, 15063, 16299, 17134, 18362, 18363, 19041, 19042, 19043,
        ] {
            assert_eq!(w10(b), Support::Unsupported, "build {b}");
        }
        for b in [17763, 19044, 19045] {
            assert_eq!(w10(b), Support::Supported, "build {b}");
        }
        assert_eq!(
            w10(14393),
            Support::Unsupported,
            "LTSB 2016 ended in Oct 2026"
        );
        assert_eq!(
            support("Windows10", Some(14393), date(2026, 6, 1)),
            Support::Supported,
            "the date decides"
        );
        assert_eq!(support("Windows10", None, on()), Support::Unknown);
    }

    #[test]
    fn windows11_and_server_follow_their_dates_and_other_platforms_are_not_judged() {
        assert_eq!(
            support("Windows11", Some(22631), on()),
            Support::Unsupported
        );
        assert_eq!(support("Windows11", Some(26100), on()), Support::Supported);
        assert_eq!(support("Windows11", Some(27000), on()), Support::Supported);
        assert_eq!(
            support("Windows Server 2012 R2", Some(9600), on()),
            Support::Unsupported
        );
        assert_eq!(
            support("WindowsServer2019", Some(17763), on()),
            Support::Supported
        );
        assert_eq!(support("Linux", Some(5), on()), Support::Unknown);
        assert_eq!(support("macOS", None, on()), Support::Unknown);
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
