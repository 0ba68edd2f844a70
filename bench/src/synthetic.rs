//! What the bench binaries share: a synthetic checklist of `n` compliance items, a stamp
//! by the lead inspector, and the figures' arithmetic. Included by `#[path]`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use wardcheck_core::checklist::{self, Checklist};
use wardcheck_core::inspection::Stamp;

pub fn synthetic_checklist(n: usize) -> Arc<Checklist> {
    let mut toml = String::from(
        "id = \"bench\"\nversion = \"1\"\ntitle = \"Benchmark\"\napplies_to = [\"acute\"]\n",
    );
    for s in 0..n.div_ceil(20) {
        toml.push_str(&format!(
            "\n[[sections]]\nid = \"s{s}\"\ntitle = \"Section {s}\"\n"
        ));
        for i in (s * 20)..((s + 1) * 20).min(n) {
            toml.push_str(&format!(
                "\n[[sections.items]]\nid = \"item-{i}\"\nprompt = \"Prompt {i}\"\n\
                 guidance = \"Guidance {i}\"\nanswer = \"compliance\"\nseverity = \"high\"\n"
            ));
        }
    }
    Arc::new(checklist::load_str("bench.toml", &toml, None).expect("synthetic checklist loads"))
}

pub fn stamp(i: usize) -> Stamp {
    Stamp::new(
        "ann",
        Utc.timestamp_opt(1_790_000_000 + i as i64, 0).unwrap(),
    )
}

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
