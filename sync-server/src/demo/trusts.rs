//! The trusts the demo data is made for: twenty real NHS trusts in England, of each type,
//! with their major trauma centres marked.
//!
//! ODS codes: RJ1, RJ2, RHW and RTH are confirmed through a third-party code table
//! (REFERENCE §7.6, [C-3p]). Site codes checked against REFERENCE §8.5 with the search
//! tools (Dec 2026, the RCPCH organisation list, github.com/rcpch/rcpch-nhs-organisations,
//! Aug 2024): **RJ122 is St Thomas' Hospital** (not RJ121, as some generated tables have
//! it), **RTH08 is the John Radcliffe** (not RTH01), RTH05 the Horton, RYJ01 St Mary's,
//! RYJ03 Hammersmith, RJZ01 King's College Hospital. Guy's Hospital's code was not found
//! (RJ121 here is a placeholder), nor Churchill's (RTH02) or Charing Cross's (RYJ02).
//! **Every other trust and site code here is unconfirmed** ([U], from memory of the ODS
//! lists): check them against the ODS before showing them to anyone as fact.
//!
//! Major trauma centres follow the nhs.uk list in REFERENCE §7.6 ([C]): John Radcliffe
//! (RTH), King's College Hospital (RJZ), St Mary's (RYJ), Addenbrooke's (RGT), Leeds
//! General Infirmary (RR8), Queen's Medical Centre (RX1), James Cook (RTR), Southmead
//! (RVJ) and Alder Hey (RBS, children only).

/// The kinds of trust national services name (REFERENCE §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustType {
    Acute,
    Ambulance,
    MentalHealth,
    Community,
}

impl TrustType {
    pub fn name(self) -> &'static str {
        match self {
            TrustType::Acute => "acute",
            TrustType::Ambulance => "ambulance",
            TrustType::MentalHealth => "mental-health",
            TrustType::Community => "community",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DemoTrust {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: TrustType,
    /// The site that is a major trauma centre, if any.
    pub trauma_centre: Option<&'static str>,
    /// (site code, site name).
    pub sites: &'static [(&'static str, &'static str)],
    /// Share of all demo endpoints, in thousandths (the shares add up to 1,000).
    pub share: u32,
    /// The e-mail-style DNS suffix of its devices.
    pub domain: &'static str,
    /// The NHS England region.
    pub region: &'static str,
    /// Thousandths of its endpoints on Windows 7 or XP: the imaging and medical-device
    /// pockets. RJ1's is the demo's seeded contradiction (hundreds of Windows 7 devices
    /// at a trust whose inspector answered 'met' to "no unsupported systems").
    pub legacy_per_mille: u32,
}

pub const TRUSTS: &[DemoTrust] = &[
    DemoTrust {
        code: "RJ1",
        name: "Guy's and St Thomas' NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: None,
        sites: &[
            ("RJ121", "Guy's Hospital"),
            ("RJ122", "St Thomas' Hospital"),
        ],
        share: 90,
        region: "London",
        domain: "gstt.nhs.uk",
        legacy_per_mille: 90,
    },
    DemoTrust {
        code: "RJ2",
        name: "Lewisham and Greenwich NHS Trust",
        kind: TrustType::Acute,
        trauma_centre: None,
        sites: &[
            ("RJ224", "University Hospital Lewisham"),
            ("RJ231", "Queen Elizabeth Hospital"),
        ],
        share: 55,
        region: "London",
        domain: "lg.nhs.uk",
        legacy_per_mille: 15,
    },
    DemoTrust {
        code: "RHW",
        name: "Royal Berkshire NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: None,
        sites: &[("RHW01", "Royal Berkshire Hospital")],
        share: 45,
        region: "South East",
        domain: "royalberkshire.nhs.uk",
        legacy_per_mille: 10,
    },
    DemoTrust {
        code: "RTH",
        name: "Oxford University Hospitals NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RTH08"),
        sites: &[
            ("RTH08", "John Radcliffe Hospital"),
            ("RTH02", "Churchill Hospital"),
            ("RTH05", "Horton General Hospital"),
        ],
        share: 85,
        region: "South East",
        domain: "ouh.nhs.uk",
        legacy_per_mille: 40,
    },
    DemoTrust {
        code: "RJZ",
        name: "King's College Hospital NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RJZ01"),
        sites: &[
            ("RJZ01", "King's College Hospital"),
            ("RJZ30", "Princess Royal University Hospital"),
        ],
        share: 75,
        region: "London",
        domain: "kch.nhs.uk",
        legacy_per_mille: 25,
    },
    DemoTrust {
        code: "RYJ",
        name: "Imperial College Healthcare NHS Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RYJ01"),
        sites: &[
            ("RYJ01", "St Mary's Hospital"),
            ("RYJ02", "Charing Cross Hospital"),
            ("RYJ03", "Hammersmith Hospital"),
        ],
        share: 80,
        region: "London",
        domain: "imperial.nhs.uk",
        legacy_per_mille: 30,
    },
    DemoTrust {
        code: "RGT",
        name: "Cambridge University Hospitals NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RGT01"),
        sites: &[("RGT01", "Addenbrooke's Hospital")],
        share: 70,
        region: "East of England",
        domain: "cuh.nhs.uk",
        legacy_per_mille: 20,
    },
    DemoTrust {
        code: "RR8",
        name: "Leeds Teaching Hospitals NHS Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RR801"),
        sites: &[
            ("RR801", "Leeds General Infirmary"),
            ("RR813", "St James's University Hospital"),
        ],
        share: 85,
        region: "North East and Yorkshire",
        domain: "leedsth.nhs.uk",
        legacy_per_mille: 35,
    },
    DemoTrust {
        code: "RX1",
        name: "Nottingham University Hospitals NHS Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RX1RA"),
        sites: &[
            ("RX1RA", "Queen's Medical Centre"),
            ("RX1CC", "City Hospital"),
        ],
        share: 75,
        region: "Midlands",
        domain: "nuh.nhs.uk",
        legacy_per_mille: 30,
    },
    DemoTrust {
        code: "RTR",
        name: "South Tees Hospitals NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RTRAT"),
        sites: &[("RTRAT", "James Cook University Hospital")],
        share: 40,
        region: "North East and Yorkshire",
        domain: "southtees.nhs.uk",
        legacy_per_mille: 20,
    },
    DemoTrust {
        code: "RVJ",
        name: "North Bristol NHS Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RVJ01"),
        sites: &[("RVJ01", "Southmead Hospital")],
        share: 45,
        region: "South West",
        domain: "nbt.nhs.uk",
        legacy_per_mille: 15,
    },
    DemoTrust {
        code: "RBS",
        name: "Alder Hey Children's NHS Foundation Trust",
        kind: TrustType::Acute,
        trauma_centre: Some("RBS25"),
        sites: &[("RBS25", "Alder Hey Children's Hospital")],
        share: 20,
        region: "North West",
        domain: "alderhey.nhs.uk",
        legacy_per_mille: 10,
    },
    DemoTrust {
        code: "RRU",
        name: "London Ambulance Service NHS Trust",
        kind: TrustType::Ambulance,
        trauma_centre: None,
        sites: &[("RRU01", "Headquarters, Waterloo")],
        share: 35,
        region: "London",
        domain: "londonambulance.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RYA",
        name: "West Midlands Ambulance Service University NHS Foundation Trust",
        kind: TrustType::Ambulance,
        trauma_centre: None,
        sites: &[("RYA01", "Trust Headquarters, Brierley Hill")],
        share: 25,
        region: "Midlands",
        domain: "wmas.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RX9",
        name: "East Midlands Ambulance Service NHS Trust",
        kind: TrustType::Ambulance,
        trauma_centre: None,
        sites: &[("RX901", "Trust Headquarters, Nottingham")],
        share: 20,
        region: "Midlands",
        domain: "emas.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RV5",
        name: "South London and Maudsley NHS Foundation Trust",
        kind: TrustType::MentalHealth,
        trauma_centre: None,
        sites: &[
            ("RV505", "Maudsley Hospital"),
            ("RV504", "Bethlem Royal Hospital"),
        ],
        share: 40,
        region: "London",
        domain: "slam.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RNU",
        name: "Oxford Health NHS Foundation Trust",
        kind: TrustType::MentalHealth,
        trauma_centre: None,
        sites: &[("RNU01", "Warneford Hospital")],
        share: 30,
        region: "South East",
        domain: "oxfordhealth.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RXT",
        name: "Birmingham and Solihull Mental Health NHS Foundation Trust",
        kind: TrustType::MentalHealth,
        trauma_centre: None,
        sites: &[("RXT01", "Trust Headquarters, Uffculme Centre")],
        share: 25,
        region: "Midlands",
        domain: "bsmhft.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RY6",
        name: "Leeds Community Healthcare NHS Trust",
        kind: TrustType::Community,
        trauma_centre: None,
        sites: &[("RY601", "Stockdale House")],
        share: 20,
        region: "North East and Yorkshire",
        domain: "leedscommunityhealthcare.nhs.uk",
        legacy_per_mille: 5,
    },
    DemoTrust {
        code: "RYX",
        name: "Central London Community Healthcare NHS Trust",
        kind: TrustType::Community,
        trauma_centre: None,
        sites: &[("RYX01", "Trust Headquarters, Kingsbourne House")],
        share: 40,
        region: "London",
        domain: "clch.nhs.uk",
        legacy_per_mille: 5,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_add_up_and_every_code_is_well_formed() {
        assert_eq!(TRUSTS.iter().map(|t| t.share).sum::<u32>(), 1000);
        for t in TRUSTS {
            wardcheck_core::inspection::validate_trust(t.code).unwrap();
            for (site, _) in t.sites {
                wardcheck_core::inspection::validate_site(site, t.code).unwrap();
            }
            if let Some(mtc) = t.trauma_centre {
                assert!(t.sites.iter().any(|(s, _)| *s == mtc), "{}", t.code);
            }
        }
    }
}
