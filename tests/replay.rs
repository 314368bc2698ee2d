//! `vigil replay` end to end: the real binary on small `.psv` and NDJSON fixtures written here,
//! with reports computed by hand (docs/replay.md defines every figure).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vigil-replay-{kind}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HEADER: &str = "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|FiO2|PaCO2|Lactate|WBC|ICULOS|SepsisLabel";

/// One row: HR, Temp, lactate (NaN when `None`), ICULOS and label; the rest normal.
fn row(hr: u32, temp: f64, lactate: Option<f64>, hour: u32, label: u8) -> String {
    let lac = lactate.map_or("NaN".to_string(), |l| l.to_string());
    format!("{hr}|98|{temp}|125|85|70|16|NaN|NaN|{lac}|NaN|{hour}|{label}")
}

/// Only `sepsis.sirs_lactate`, so the expected predictions are easy to see.
const SIRS_ONLY: &str = r#"
[[profiles]]
name = "sirs-only"
[profiles.rules."news2.single3"]
enabled = false
[profiles.rules."news2.medium"]
enabled = false
[profiles.rules."news2.high"]
enabled = false
[profiles.rules."news2.trend"]
enabled = false
[profiles.rules."sepsis.qsofa"]
enabled = false
[profiles.rules."sepsis.model"]
enabled = false
"#;

fn vigil(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_stays(dir: &Path) {
    // Septic stay, labels 0,0,0,0,1,1. SIRS 2 (HR 120, Temp 39.0) with lactate 3.0 from the
    // third row (index 2) on: predictions 0,0,1,1,1,1 as in the challenge's worked example.
    let septic = [
        row(80, 37.0, None, 1, 0),
        row(82, 37.0, None, 2, 0),
        row(120, 39.0, Some(3.0), 3, 0),
        row(121, 39.1, None, 4, 0),
        row(122, 39.2, None, 5, 1),
        row(123, 39.3, None, 6, 1),
    ];
    std::fs::write(
        dir.join("a-septic.psv"),
        format!("{HEADER}\n{}\n", septic.join("\n")),
    )
    .unwrap();
    // A stay that is never septic and never alerted: six normal rows.
    let quiet: Vec<String> = (1..=6).map(|h| row(75, 36.8, None, h, 0)).collect();
    std::fs::write(
        dir.join("b-quiet.psv"),
        format!("{HEADER}\n{}\n", quiet.join("\n")),
    )
    .unwrap();
    // A malformed row: reported with file and line; the other files carry on.
    std::fs::write(
        dir.join("c-broken.psv"),
        format!("{HEADER}\n{}\n80|98|oops\n", row(80, 37.0, None, 1, 0)),
    )
    .unwrap();
}

/// An `--alerts` file by alert: every line an alert object, each alert's versions 1, 2, ...
/// in file order.
fn transitions(path: &Path) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut trail: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let a: Value = serde_json::from_str(line).expect("an alert per line");
        let id = a["alertId"].as_str().expect("alertId").to_string();
        let steps = trail.entry(id.clone()).or_default();
        assert_eq!(
            a["version"],
            steps.len() + 1,
            "alert {id}: versions in order"
        );
        steps.push(a);
    }
    trail
}

/// Every `<text>` element of an SVG document written by plotters: its attributes (with a
/// leading space, so that ` x="` finds the attribute `x`) and its text.
fn text_elements(svg: &str) -> Vec<(String, String)> {
    svg.split("<text ")
        .skip(1)
        .map(|t| {
            let close = t.find('>').expect("a closed tag");
            let body = &t[close + 1..];
            let text = body[..body.find('<').expect("an end tag")].trim();
            (format!(" {}", &t[..close]), text.replace("&amp;", "&"))
        })
        .collect()
}

/// The text of every `<text>` element.
fn texts(svg: &str) -> Vec<String> {
    text_elements(svg)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// Every label of the plot lies on its canvas, its width estimated at 0.6 em a character
/// (wider than the sans-serif fonts that draw it), so that nothing is clipped.
fn assert_drawn_inside(svg: &str) {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let from = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[from..].split('"').next()?.parse().ok()
    };
    let head = &svg[..svg.find('>').unwrap()];
    let (w, h) = (attr(head, "width").unwrap(), attr(head, "height").unwrap());
    for (tag, text) in text_elements(svg) {
        let tag = tag.as_str();
        let (x, y) = (attr(tag, "x").unwrap(), attr(tag, "y").unwrap());
        let size = attr(tag, "font-size").unwrap();
        let len = 0.6 * size * text.chars().count() as f64;
        let share = if tag.contains("\"middle\"") {
            0.5
        } else if tag.contains("\"end\"") {
            1.0
        } else {
            0.0
        };
        // plotters turns a vertical axis title around its anchor.
        let (along, across, along_limit, across_limit) = if tag.contains("rotate(") {
            (y, x, h, w)
        } else {
            (x, y, w, h)
        };
        assert!(
            along - share * len >= 0.0 && along + (1.0 - share) * len <= along_limit,
            "`{text}` runs off the {w}x{h} canvas: {tag}"
        );
        assert!(
            (0.0..=across_limit).contains(&across),
            "`{text}` is placed off the canvas: {tag}"
        );
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-4)
}

/// The report's row of `name`.
fn rule<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|x| x["rule"] == name))
        .unwrap_or_else(|| panic!("no rule {name} in {report}"))
}

#[test]
fn psv_replay_reports_the_hand_computed_figures() {
    let dir = temp_dir("psv");
    write_stays(&dir);
    let config = dir.join("vigil.toml");
    std::fs::write(&config, SIRS_ONLY).unwrap();
    let scores = dir.join("scores.ndjson");
    let alerts = dir.join("alerts.ndjson");
    let plot = dir.join("plot.svg");
    let (ok, stdout, stderr) = vigil(&[
        "replay",
        "--psv",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--profile",
        "sirs-only",
        "--json",
        "--scores",
        scores.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let r: Value = serde_json::from_str(&stdout).expect("json report");
    assert_eq!(r["profile"], "sirs-only");
    assert_eq!(r["stays"], 2);
    assert_eq!(r["rows"], 12);
    assert_eq!(r["septicStays"], 1);
    assert!(close(&r["patientDays"], 0.5));
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("c-broken.psv")
    );
    assert_eq!(skipped[0]["line"], 3);
    // The columns Vigil reads that these files do not have, by how many of the two stays read
    // lack each (the skipped file is not counted).
    let lacking: Vec<String> = [
        "Platelets",
        "Creatinine",
        "Bilirubin_total",
        "BUN",
        "Glucose",
        "pH",
        "HCO3",
        "Hgb",
        "Potassium",
        "Age",
        "Gender",
        "HospAdmTime",
    ]
    .iter()
    .map(|c| format!("[\"{c}\",2]"))
    .collect();
    assert_eq!(
        r["absentColumns"].to_string(),
        format!("[{}]", lacking.join(",")),
        "{r}"
    );

    let sirs = rule(&r, "sepsis.sirs_lactate");
    assert_eq!(sirs["patientsAlerted"], 1);
    assert_eq!(sirs["alerts"], 1);
    assert!(close(&sirs["sensitivity"], 1.0));
    assert!(close(&sirs["specificity"], 1.0));
    // First alert at ICULOS 3, first label at ICULOS 5.
    assert!(close(&sirs["medianLeadHours"], 2.0));
    // 2 h ahead is within the 1-6 h of an early warning.
    assert!(close(&sirs["earlyWarning"], 1.0));
    // One alert over 12 rows = 0.5 patient-days.
    assert!(close(&sirs["alertsPerPatientDay"], 2.0));
    // The stay never labelled was never alerted.
    assert!(close(&sirs["falseAlertsPerPatientDay"], 0.0));
    // U = 3.3889 (worked example), U_none = -2/9, U_best = 4.2222:
    // (3.3889 + 0.2222) / (4.2222 + 0.2222) = 0.8125.
    assert!(close(&sirs["utility"], 0.8125), "{sirs}");
    assert_eq!(r["overall"]["utility"], sirs["utility"]);
    let qsofa = rule(&r, "sepsis.qsofa");
    assert_eq!(qsofa["enabled"], false);

    let lines: Vec<Value> = std::fs::read_to_string(&scores)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("score line"))
        .collect();
    assert_eq!(lines.len(), 12, "one score per row with vitals");
    let first = lines
        .iter()
        .find(|l| l["patientId"] == "a-septic" && l["at"] == "2020-01-01T03:00:00Z")
        .expect("septic third row");
    assert_eq!(first["news2"]["points"]["hr"], 2);
    assert_eq!(first["news2"]["points"]["consciousness"], Value::Null);
    assert_eq!(first["news2"]["partial"], true);
    assert!(
        first["news2"]["missing"]
            .as_array()
            .unwrap()
            .contains(&json!("consciousness"))
    );
    assert_eq!(first["sirs"], 2);
    assert_eq!(first["qsofa"], 0);
    // The report's one SIRS alert, every transition of it, on the stay's clock; beside it the
    // hourly rows' signal-loss alerts (5 min in this profile), each resolved by the next row.
    let trail = transitions(&alerts);
    let (technical, clinical): (Vec<_>, Vec<_>) = trail
        .values()
        .partition(|steps| steps[0]["category"] == "technical");
    assert_eq!(clinical.len(), 1, "{} clinical alerts", clinical.len());
    assert!(!technical.is_empty());
    for steps in &technical {
        assert_eq!(steps[0]["rule"], "technical.signal_loss");
        assert_eq!(steps.last().unwrap()["state"], "resolved");
    }
    let steps = clinical[0];
    assert_eq!(steps[0]["rule"], "sepsis.sirs_lactate");
    assert_eq!(steps[0]["patientId"], "a-septic");
    assert_eq!(steps[0]["state"], "open");
    assert_eq!(steps[0]["openedAt"], "2020-01-01T03:00:00Z");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_drawn_inside(&svg);
    let labels = texts(&svg);
    for label in [
        "vigil replay: profile sirs-only (2 stays)",
        "1 septic stay alerted before its label",
        "sepsis.sirs_lactate",
        "profile",
        "all alerts (the profile in red)",
        "false: per patient-day of stays never labelled septic",
        "Lead time before the first SepsisLabel",
    ] {
        assert!(labels.iter().any(|l| l == label), "{label}: {labels:?}");
    }
    let off = labels
        .iter()
        .find(|l| l.starts_with("off in this profile: "))
        .expect("the rules switched off are named");
    assert!(
        off.contains("news2.high") && !off.contains("sepsis.sirs_lactate"),
        "{off}"
    );
    assert!(
        !labels.iter().any(|l| l == "news2.high"),
        "a rule switched off is no empty row: {labels:?}"
    );
    assert!(
        !svg.contains("Calibration"),
        "no model, no calibration panel"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn psv_replay_prints_a_table_and_rejects_unknown_profiles() {
    let dir = temp_dir("psv-text");
    write_stays(&dir);
    let (ok, stdout, stderr) = vigil(&["replay", "--psv", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("profile charted"), "{stdout}");
    assert!(stdout.contains("c-broken.psv line 3"), "{stdout}");
    // The charted profile: the RCP's NEWS2 rules, the model as the only sepsis rule.
    assert!(
        stdout.contains("sepsis.qsofa                off")
            && stdout.contains("sepsis.sirs_lactate         off"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("news2.single3               off"),
        "{stdout}"
    );
    let (ok, _, stderr) = vigil(&[
        "replay",
        "--psv",
        dir.to_str().unwrap(),
        "--profile",
        "nope",
    ]);
    assert!(!ok);
    assert!(stderr.contains("no threshold profile `nope`") && stderr.contains("charted"));
    let (ok, _, stderr) = vigil(&["replay", "--psv", "/nonexistent-vigil-dir"]);
    assert!(!ok && stderr.contains("/nonexistent-vigil-dir"), "{stderr}");
    let (ok, _, stderr) = vigil(&[
        "replay",
        "--psv",
        dir.to_str().unwrap(),
        "--alerts",
        "/nonexistent-vigil-dir/alerts.ndjson",
    ]);
    assert!(
        !ok && stderr.contains("cannot create /nonexistent-vigil-dir/alerts.ndjson"),
        "{stderr}"
    );
    // More workers than any machine runs is a mistake, refused before a thread starts; the
    // most is taken.
    let (ok, _, stderr) = vigil(&["replay", "--psv", dir.to_str().unwrap(), "--threads", "257"]);
    assert!(
        !ok && stderr.contains("--threads") && stderr.contains("0..=256"),
        "{stderr}"
    );
    let (ok, _, stderr) = vigil(&["replay", "--psv", dir.to_str().unwrap(), "--threads", "256"]);
    assert!(ok, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn envelope(id: &str, minute: u32, data: Value) -> String {
    json!({
        "eventId": id, "eventType": "vitals.observation.v1", "eventVersion": "1",
        "occurredAt": format!("2025-11-27T09:{minute:02}:00Z"), "producer": "mon-1",
        "tenantId": "clinic-abc", "data": data
    })
    .to_string()
}

#[test]
fn events_replay_uses_the_live_decoder_and_rules() {
    let dir = temp_dir("events");
    let high = |p: &str| {
        json!({"patientId": p, "unitId": "icu-3", "hr": 112, "rr": 26, "spo2": 91,
               "onOxygen": false, "temp": 37.0, "sbp": 120, "consciousness": "A"})
    };
    let normal = |p: &str| {
        json!({"patientId": p, "unitId": "icu-3", "hr": 70, "rr": 16, "spo2": 98,
               "onOxygen": false, "temp": 37.0, "sbp": 120, "consciousness": "A"})
    };
    let lines = [
        envelope("e1", 0, high("p-1")),
        envelope("e2", 0, normal("p-2")),
        envelope("e3", 1, high("p-1")),
        envelope("e4", 1, normal("p-2")),
        "{not json".to_string(),
        envelope(
            "e5",
            2,
            json!({"patientId": "p-2", "unitId": "icu-3", "hr": 400}),
        ),
    ];
    let file = dir.join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let alerts = dir.join("alerts.ndjson");
    let plot = dir.join("plot.svg");
    let (ok, stdout, stderr) = vigil(&[
        "replay",
        "--events",
        file.to_str().unwrap(),
        "--json",
        "--alerts",
        alerts.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // Without labels: no false-alert series, no septic stay to count, nothing off the canvas.
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_drawn_inside(&svg);
    let labels = texts(&svg);
    assert!(labels.iter().any(|l| l == "news2.high"), "{labels:?}");
    assert!(
        labels
            .iter()
            .any(|l| l == "0 septic stays alerted before their label"),
        "{labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.starts_with("false:")),
        "{labels:?}"
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["source"], "events");
    assert_eq!(r["profile"], "default");
    assert_eq!(r["stays"], 2);
    assert_eq!(r["septicStays"], Value::Null);
    let rejected: Vec<(String, u64)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x[0].as_str().unwrap().to_string(), x[1].as_u64().unwrap()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            ("DECODE_FAILED".to_string(), 1),
            ("VITAL_OUT_OF_RANGE".to_string(), 1)
        ]
    );
    let high = rule(&r, "news2.high");
    assert_eq!(high["patientsAlerted"], 1);
    assert_eq!(high["alerts"], 1);
    assert_eq!(high["sensitivity"], Value::Null, "no labels in a recording");
    // Every transition, as the ALERTS stream's data: p-1's news2.high opened on its second
    // reading (the event's time is the replay's clock), nothing for p-2.
    let trail = transitions(&alerts);
    let opened: Vec<&Value> = trail.values().map(|steps| &steps[0]).collect();
    assert!(opened.iter().all(|a| a["patientId"] == "p-1"), "{opened:?}");
    let high: Vec<&&Value> = opened
        .iter()
        .filter(|a| a["rule"] == "news2.high")
        .collect();
    assert_eq!(high.len(), 1, "{opened:?}");
    assert_eq!(high[0]["level"], "critical");
    assert_eq!(high[0]["tenantId"], "clinic-abc");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predictions_are_written_in_the_challenge_layout_one_file_per_stay() {
    let dir = temp_dir("predictions");
    write_stays(&dir);
    let config = dir.join("vigil.toml");
    std::fs::write(&config, SIRS_ONLY).unwrap();
    let out = dir.join("out");
    let (ok, _, stderr) = vigil(&[
        "replay",
        "--psv",
        dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--profile",
        "sirs-only",
        "--json",
        "--predictions",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // The challenge's worked example: the SIRS-with-lactate alert is open from the third row.
    // The model is off in this profile, so its risk is 0 throughout.
    let septic = std::fs::read_to_string(out.join("a-septic.psv")).unwrap();
    let mut lines = septic.lines();
    assert_eq!(lines.next(), Some("PredictedProbability|PredictedLabel"));
    let labels: Vec<&str> = lines.map(|l| l.split('|').nth(1).unwrap()).collect();
    assert_eq!(labels, ["0", "0", "1", "1", "1", "1"]);
    assert!(septic.lines().skip(1).all(|l| l.starts_with("0.0000|")));
    let quiet = std::fs::read_to_string(out.join("b-quiet.psv")).unwrap();
    assert_eq!(quiet.lines().count(), 7, "a header and one line per row");
    assert!(quiet.lines().skip(1).all(|l| l.ends_with("|0")));
    assert!(
        !out.join("c-broken.psv").exists(),
        "a skipped stay predicts nothing"
    );

    // With the model (the built-in profile), the probability is its risk in 0..1, the report
    // ranks it and draws its calibration.
    let plot = dir.join("plot.svg");
    let (ok, stdout, stderr) = vigil(&[
        "replay",
        "--psv",
        dir.to_str().unwrap(),
        "--json",
        "--predictions",
        out.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let septic = std::fs::read_to_string(out.join("a-septic.psv")).unwrap();
    let risks: Vec<f64> = septic
        .lines()
        .skip(1)
        .map(|l| l.split('|').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(risks.len(), 6);
    assert!(
        risks.iter().all(|r| (0.0..=1.0).contains(r) && *r > 0.0),
        "{risks:?}"
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    let screen = &r["screen"];
    assert!(
        screen["model"]
            .as_str()
            .unwrap()
            .starts_with("vigil-sepsis-ebm ")
    );
    assert!(
        (0.0..=1.0).contains(&screen["auroc"].as_f64().unwrap()),
        "{screen}"
    );
    // Every row of the two stays read is in one calibration bin; two of the twelve are
    // labelled septic.
    let bins = screen["calibration"].as_array().unwrap();
    assert!(!bins.is_empty() && bins.len() <= 10, "{screen}");
    let rows: u64 = bins.iter().map(|b| b["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 12);
    let septic_rows: f64 = bins
        .iter()
        .map(|b| b["observed"].as_f64().unwrap() * b["rows"].as_f64().unwrap())
        .sum();
    assert!((septic_rows - 2.0).abs() < 1e-3, "{screen}");
    let means: Vec<f64> = bins
        .iter()
        .map(|b| b["meanRisk"].as_f64().unwrap())
        .collect();
    assert!(
        means.windows(2).all(|w| w[0] <= w[1]),
        "lowest first: {means:?}"
    );
    // The profile's thresholds judged on the rows' risks score what the rule's own alerts
    // scored, and the grid's best does no worse.
    let t = &screen["thresholds"];
    let model = rule(&r, "sepsis.model");
    assert_eq!(model["enabled"], true);
    let utility = t["utility"].as_f64().unwrap();
    assert!(
        (utility - model["utility"].as_f64().unwrap()).abs() < 1e-5,
        "{t} against {model}"
    );
    assert!(t["bestUtility"].as_f64().unwrap() >= utility, "{t}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_drawn_inside(&svg);
    let labels = texts(&svg);
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("Calibration of vigil-sepsis-ebm")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l == "perfectly calibrated"),
        "{labels:?}"
    );
    assert_eq!(svg.matches("<circle").count(), bins.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_file_that_is_missing_broken_or_for_other_features_stops_the_start() {
    let dir = temp_dir("model");
    write_stays(&dir);
    let built_in = include_str!("../engine/models/sepsis.vmodel");
    let (header, body) = built_in.split_once('\n').unwrap();
    let renamed = body.replacen("\"hr.latest\"", "\"HR.latest\"", 1);
    let rehash = |body: &str| {
        let digest = vigil_engine::patient::model::checksum(body.trim_end());
        format!("vigil-model 1 sha256={digest}\n{body}")
    };
    let replay_with = |config: &Path| {
        let (ok, _, stderr) = vigil(&[
            "replay",
            "--psv",
            dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]);
        (ok, stderr)
    };
    let cases = [
        ("absent.vmodel", None, "cannot read the sepsis model"),
        (
            "truncated.vmodel",
            Some(built_in[..built_in.len() / 2].to_string()),
            "checksum mismatch",
        ),
        (
            "edited.vmodel",
            Some(format!(
                "{header}\n{}",
                body.replacen("\"intercept\":", "\"intercept\":1", 1)
            )),
            "checksum mismatch",
        ),
        (
            "other.vmodel",
            Some(rehash(&renamed)),
            "unknown source `HR`",
        ),
        (
            "empty.vmodel",
            Some(String::new()),
            "not a Vigil model file",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let config = dir.join("model.toml");
        std::fs::write(
            &config,
            format!("[rules.\"sepsis.model\"]\nmodel = \"{}\"\n", path.display()),
        )
        .unwrap();
        let (ok, stderr) = replay_with(&config);
        assert!(!ok, "{name} must be refused");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(says),
            "{name}: {stderr}"
        );
    }
    // The built-in model, named as a file, is accepted.
    let path = dir.join("same.vmodel");
    std::fs::write(&path, built_in).unwrap();
    let config = dir.join("model.toml");
    std::fs::write(
        &config,
        format!(
            "[rules.\"sepsis.model\"]\nmodel = \"{}\"\nrisk = 0.5\n",
            path.display()
        ),
    )
    .unwrap();
    let (ok, stderr) = replay_with(&config);
    assert!(ok, "{stderr}");
    // A profile cannot name a model, and a risk is 0..1.
    for (text, says) in [
        (
            "[[profiles]]\nname = \"p\"\n[profiles.rules.\"sepsis.model\"]\nmodel = \"x\"\n",
            "model",
        ),
        ("[rules.\"sepsis.model\"]\nrisk = 1.5\n", "risk"),
        ("[rules.\"sepsis.model\"]\nthreshold = 3\n", "risk"),
        (
            "[rules.\"sepsis.qsofa\"]\nrisk = 0.5\n",
            "only sepsis.model",
        ),
        (
            "[rules.\"sepsis.model\"]\nrisk = 0.2\nclear_risk = 0.3\n",
            "clear_risk",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let (ok, stderr) = replay_with(&config);
        assert!(!ok && stderr.contains(says), "{text}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
