//! The values a telemetry field may hold, and strict parsers for them.
//!
//! Every parser takes the field's text (already trimmed; empty means "no value") and
//! returns the typed value or a short message that carries the bad value. Vocabularies
//! (OS platform, onboarding and health status, exposure level, trust type) accept their
//! documented spellings in any letter case and store the documented spelling.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A value as shown in a message: quoted, at most 60 characters, control characters
/// escaped (a bad value may be a 4 KiB field, or hold a line break).
pub(crate) fn shown(s: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == 60 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Declares a closed vocabulary: an enum whose values have one documented spelling each.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in the documented order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The documented spelling, as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// A documented spelling, in any letter case.
            pub fn parse(s: &str) -> Result<Self, String> {
                $(if s.eq_ignore_ascii_case($text) {
                    return Ok($name::$variant);
                })+
                Err(format!(
                    "{} is not a known {}: expected one of {}",
                    shown(s),
                    $what,
                    [$($text,)+].join(", ")
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Defender for Endpoint's `osPlatform` (REFERENCE §7.1), as the feeds spell it.
    OsPlatform, "OS platform", {
        WindowsXp => "WindowsXP",
        WindowsVista => "WindowsVista",
        Windows7 => "Windows7",
        Windows8 => "Windows8",
        Windows8Blue => "Windows8Blue",
        Windows10 => "Windows10",
        Windows11 => "Windows11",
        WindowsServer2003 => "WindowsServer2003",
        WindowsServer2008 => "WindowsServer2008",
        WindowsServer2008R2 => "WindowsServer2008R2",
        WindowsServer2012 => "WindowsServer2012",
        WindowsServer2012R2 => "WindowsServer2012R2",
        WindowsServer2016 => "WindowsServer2016",
        WindowsServer2019 => "WindowsServer2019",
        WindowsServer2022 => "WindowsServer2022",
        WindowsServer2025 => "WindowsServer2025",
        Linux => "Linux",
        MacOs => "macOS",
        Ios => "iOS",
        Android => "Android",
        Unknown => "Unknown",
        Other => "other",
    }
);

vocabulary!(
    /// Defender for Endpoint's `onboardingStatus` (REFERENCE §7.1).
    OnboardingStatus, "onboarding status", {
        Onboarded => "onboarded",
        CanBeOnboarded => "CanBeOnboarded",
        Unsupported => "Unsupported",
        InsufficientInfo => "InsufficientInfo",
        Other => "other",
    }
);

vocabulary!(
    /// Defender for Endpoint's `healthStatus` (REFERENCE §7.1).
    HealthStatus, "health status", {
        Active => "Active",
        Inactive => "Inactive",
        ImpairedCommunication => "ImpairedCommunication",
        NoSensorData => "NoSensorData",
        NoSensorDataImpairedCommunication => "NoSensorDataImpairedCommunication",
        Unknown => "Unknown",
        Other => "other",
    }
);

vocabulary!(
    /// Defender for Endpoint's `riskScore` (REFERENCE §7.1).
    RiskScore, "risk score", {
        None => "None",
        Informational => "Informational",
        Low => "Low",
        Medium => "Medium",
        High => "High",
        Other => "other",
    }
);

/// An IP address, v4 or v6.
pub(crate) fn ip_address(s: &str) -> Result<std::net::IpAddr, String> {
    s.parse()
        .map_err(|_| format!("{} is not an IP address", shown(s)))
}

vocabulary!(
    /// Defender for Endpoint's `exposureLevel` (REFERENCE §7.1).
    ExposureLevel, "exposure level", {
        None => "None",
        Low => "Low",
        Medium => "Medium",
        High => "High",
        Other => "other",
    }
);

vocabulary!(
    /// The kinds of trust national services distinguish (REFERENCE §7.6).
    TrustType, "trust type", {
        Acute => "acute",
        Ambulance => "ambulance",
        MentalHealth => "mental-health",
        Community => "community",
    }
);

/// `true`/`false`, `1`/`0`, `yes`/`no`, in any letter case.
pub(crate) fn boolean(s: &str) -> Result<bool, String> {
    const TRUE: [&str; 3] = ["true", "1", "yes"];
    const FALSE: [&str; 3] = ["false", "0", "no"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Ok(false)
    } else {
        Err(format!(
            "{} is not a boolean: expected true/false, 1/0 or yes/no",
            shown(s)
        ))
    }
}

/// `YYYY-MM-DD`, or an RFC 3339 date and time (its date in UTC).
pub(crate) fn date(s: &str) -> Result<NaiveDate, String> {
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", shown(s)));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .map_err(|_| {
            format!(
                "{} is not a date (YYYY-MM-DD) or an RFC 3339 date and time",
                shown(s)
            )
        })
}

/// An RFC 3339 date and time (any offset, kept in UTC), or `YYYY-MM-DD` (midnight UTC).
pub(crate) fn datetime(s: &str) -> Result<DateTime<Utc>, String> {
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
            .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", shown(s)));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "{} is not an RFC 3339 date and time (e.g. 2026-11-29T08:30:00Z) or a date",
                shown(s)
            )
        })
}

/// How a date and time is stored: RFC 3339 in UTC to the second, one fixed width, so that
/// stored values compare correctly as text.
pub(crate) fn stored_datetime(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Written by hand for the common case (the import stores two a row, and chrono's
    // formatter was a tenth of the checking thread's time); chrono's for a year outside
    // 0-9999 or a leap second. A test holds the two equal.
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let year = year as u32;
    let mut out = String::with_capacity(20);
    for (n, after) in [
        (year / 100, None),
        (year % 100, Some('-')),
        (t.month(), Some('-')),
        (t.day(), Some('T')),
        (t.hour(), Some(':')),
        (t.minute(), Some(':')),
        (t.second(), Some('Z')),
    ] {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
        out.extend(after);
    }
    out
}

/// How an IP address is stored: its standard text form (an IPv4 address written by hand,
/// the common case, as [`stored_datetime`] is; a test holds it equal to the standard
/// library's).
pub(crate) fn stored_ip(a: std::net::IpAddr) -> String {
    match a {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        v6 => v6.to_string(),
    }
}

/// A whole number from 0 to `u32::MAX`, decimal digits only.
pub(crate) fn count(s: &str) -> Result<u32, String> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a whole number", shown(s)));
    }
    s.parse()
        .map_err(|_| format!("{} is too large a number", shown(s)))
}

/// A trust's ODS code: 3 characters, e.g. `RJ1`.
pub(crate) fn trust_code(s: &str) -> Result<String, String> {
    wardcheck_core::inspection::validate_trust(s)
        .map(|()| s.to_owned())
        .map_err(|_| {
            format!(
                "{} is not a trust ODS code (3 characters starting with a capital, e.g. RJ1)",
                shown(s)
            )
        })
}

/// A site's ODS code within `trust`: 5 characters starting with the trust's code.
pub(crate) fn site_code(s: &str, trust: &str) -> Result<String, String> {
    wardcheck_core::inspection::validate_site(s, trust)
        .map(|()| s.to_owned())
        .map_err(|_| {
            if s.len() == 5 && !s.starts_with(trust) {
                format!("site {} does not belong to trust {trust}", shown(s))
            } else {
                format!(
                    "{} is not a site ODS code (the trust's code and 2 more characters, e.g. {trust}01)",
                    shown(s)
                )
            }
        })
}

/// The name a sampled device is matched by: a device name's first DNS label in lower
/// case (`GSTT-LT-0042.gstt.nhs.uk` gives `gstt-lt-0042`), or the whole name when it is
/// an IP address. Inspectors read the short host name off a screen; feeds carry the FQDN.
pub(crate) fn hostname_key(name: &str) -> String {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_ascii_lowercase();
    }
    let label = name.split('.').next().unwrap_or(name);
    if label.is_ascii() {
        label.to_ascii_lowercase()
    } else {
        label.to_lowercase()
    }
}

/// The classes of Windows edition the lifecycle table tells apart, from the registry's
/// `EditionID` (`EnterpriseS`, `IoTEnterpriseS`, `Professional`, `Core` ...) or a product
/// name (`Windows 10 Enterprise LTSC 2021`), in any case and spacing:
/// `iot-ltsc`, `ltsc` (LTSC and LTSB), `server`, `education`, `enterprise`, `pro`, `home`,
/// and `other` for anything else (counted as an edition the table does not know).
pub fn edition_class(text: &str) -> &'static str {
    let t: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // The registry's long-term servicing EditionIDs exactly (`EnterpriseS`, its N and
    // evaluation variants, `IoTEnterpriseS`); in a product name, only the words LTSC and
    // LTSB ("Enterprise, Semi-Annual Channel" is not long-term).
    let ltsc_id = matches!(
        t.as_str(),
        "enterprises"
            | "enterprisesn"
            | "enterpriseseval"
            | "enterprisesneval"
            | "iotenterprises"
            | "iotenterprisesk"
    );
    let ltsc = ltsc_id || t.contains("ltsc") || t.contains("ltsb");
    if t.contains("iot") && ltsc {
        "iot-ltsc"
    } else if ltsc {
        "ltsc"
    } else if t.contains("server") {
        "server"
    } else if t.contains("education") {
        "education"
    } else if t.contains("enterprise") {
        "enterprise"
    } else if t.contains("pro") {
        "pro"
    } else if t.contains("home") || t == "core" || t.starts_with("core") {
        "home"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The hand-written stored form is chrono's, for any time (leap seconds and
        /// years past 9999 included: those take chrono's path).
        #[test]
        fn stored_datetime_is_chronos_rfc3339(secs in -70_000_000_000i64..300_000_000_000, nanos in 0u32..2_000_000_000) {
            if let Some(t) = chrono::DateTime::from_timestamp(secs, nanos) {
                prop_assert_eq!(
                    super::stored_datetime(&t),
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }

        /// The hand-written IPv4 form is the standard library's, and parses back.
        #[test]
        fn stored_ip_is_the_standard_form(octets in any::<[u8; 4]>(), v6 in any::<[u16; 8]>()) {
            let v4 = std::net::IpAddr::from(octets);
            prop_assert_eq!(super::stored_ip(v4), v4.to_string());
            prop_assert_eq!(super::stored_ip(v4).parse::<std::net::IpAddr>().unwrap(), v4);
            let v6 = std::net::IpAddr::from(v6);
            prop_assert_eq!(super::stored_ip(v6), v6.to_string());
        }
    }

    #[test]
    fn stored_forms_at_the_edges() {
        use super::{stored_datetime, stored_ip};
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            stored_datetime(&t("0000-01-01T00:00:00Z")),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            stored_datetime(&t("9999-12-31T23:59:59Z")),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            stored_datetime(&t("2026-11-29T08:30:00.9+01:00")),
            "2026-11-29T07:30:00Z"
        );
        assert_eq!(stored_ip("0.0.0.0".parse().unwrap()), "0.0.0.0");
        assert_eq!(stored_ip("255.100.10.9".parse().unwrap()), "255.100.10.9");
        assert_eq!(
            stored_ip("::FFFF:10.0.0.1".parse().unwrap()),
            "::ffff:10.0.0.1"
        );
    }

    #[test]
    fn editions_are_classed_by_their_exact_ids_or_the_words_ltsc_and_ltsb() {
        use super::edition_class as e;
        assert_eq!(e("EnterpriseS"), "ltsc");
        assert_eq!(e("EnterpriseSN"), "ltsc");
        assert_eq!(e("IoTEnterpriseS"), "iot-ltsc");
        assert_eq!(e("Windows 10 IoT Enterprise LTSC 2021"), "iot-ltsc");
        assert_eq!(e("Windows 10 Enterprise LTSB 2016"), "ltsc");
        assert_eq!(
            e("Windows 10 Enterprise, Semi-Annual Channel"),
            "enterprise"
        );
        assert_eq!(e("Enterprise"), "enterprise");
        assert_eq!(e("IoTEnterprise"), "enterprise");
        assert_eq!(e("Professional"), "pro");
        assert_eq!(e("Core"), "home");
        assert_eq!(e("ServerStandard"), "server");
        assert_eq!(e("Education"), "education");
        assert_eq!(e("something new"), "other");
    }

    use super::*;

    #[test]
    fn vocabularies_take_any_case_and_store_the_documented_spelling() {
        assert_eq!(OsPlatform::parse("windows10"), Ok(OsPlatform::Windows10));
        assert_eq!(
            OsPlatform::parse("WINDOWSXP").unwrap().as_str(),
            "WindowsXP"
        );
        assert_eq!(
            OnboardingStatus::parse("ONBOARDED").unwrap().as_str(),
            "onboarded"
        );
        assert_eq!(
            HealthStatus::parse("noSensorData"),
            Ok(HealthStatus::NoSensorData)
        );
        assert_eq!(
            TrustType::parse("Mental-Health"),
            Ok(TrustType::MentalHealth)
        );
        let e = ExposureLevel::parse("Severe").unwrap_err();
        assert!(
            e.contains("\"Severe\"") && e.contains("None, Low, Medium, High"),
            "the message names the value and the choices: {e}"
        );
    }

    #[test]
    fn booleans_are_strict() {
        for t in ["true", "TRUE", "1", "yes", "Yes"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "NO"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        for bad in ["", "2", "y", "on", "truee"] {
            assert!(boolean(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            date("2026-11-29").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
        assert_eq!(
            date("2026-11-29T23:30:00-02:00").unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            "an RFC 3339 time gives its UTC date"
        );
        assert!(date("29/11/2026").is_err());
        assert!(date("2026-02-30").is_err());
        assert_eq!(
            stored_datetime(&datetime("2026-11-29T10:00:00.123+01:00").unwrap()),
            "2026-11-29T09:00:00Z"
        );
        assert_eq!(
            stored_datetime(&datetime("2026-11-29").unwrap()),
            "2026-11-29T00:00:00Z"
        );
        assert!(datetime("2026-11-29 10:00").is_err());
        assert!(datetime("yesterday").is_err());
    }

    #[test]
    fn counts_and_codes() {
        assert_eq!(count("0"), Ok(0));
        assert_eq!(count("412"), Ok(412));
        for bad in ["-1", "1.5", " 3", "1e3", "99999999999", ""] {
            assert!(count(bad).is_err(), "{bad:?} is refused");
        }
        assert!(trust_code("RJ1").is_ok());
        assert!(trust_code("rj1").is_err());
        assert!(trust_code("RJ12").is_err());
        assert!(site_code("RJ121", "RJ1").is_ok());
        let e = site_code("RTH01", "RJ1").unwrap_err();
        assert!(e.contains("does not belong to trust RJ1"), "{e}");
        assert!(site_code("RJ1", "RJ1").is_err());
    }

    #[test]
    fn host_names_are_matched_by_their_first_label() {
        assert_eq!(hostname_key("GSTT-LT-0042.gstt.nhs.uk"), "gstt-lt-0042");
        assert_eq!(hostname_key("WS-01"), "ws-01");
        assert_eq!(hostname_key("10.1.2.3"), "10.1.2.3");
    }

    #[test]
    fn messages_show_a_bounded_escaped_value() {
        let long = "x".repeat(5000);
        assert!(shown(&long).chars().count() < 70);
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
    }
}
