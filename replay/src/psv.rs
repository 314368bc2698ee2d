//! The PhysioNet/CinC 2019 layout: one pipe-separated `.psv` file per stay, a header row naming
//! the columns, one row per hour, `NaN` for not measured (scoring.md, last section).

use vigil_engine::{LabResult, Vitals};

/// One hourly row, in engine terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Hours since ICU admission (`ICULOS`); the row's time is this many hours after the stay's
    /// start. Missing `ICULOS` counts on from the previous row.
    pub hour: i64,
    pub vitals: Vitals,
    /// Lab results of this row, with the contract's codes.
    pub labs: Vec<LabResult>,
    /// `SepsisLabel`, when the file has that column.
    pub label: Option<bool>,
    /// `Age` (years), `Gender` (0 female, 1 male) and `HospAdmTime` (hours from hospital to ICU
    /// admission, negative), when the row has them: the stay's admission context.
    pub age: Option<f64>,
    pub gender: Option<f64>,
    pub hosp_adm_hours: Option<f64>,
}

/// A stay as its file holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stay {
    pub rows: Vec<Row>,
    /// The columns Vigil reads ([`read_columns`]) that the file's header does not name, one
    /// bit each in that order: a hospital's export without `Lactate`, or with `HeartRate` for
    /// `HR`, is scored without it, and the report says so.
    pub absent: u32,
}

/// A stay that could not be read: the line (1-based, the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PsvError {
    pub line: usize,
    pub reason: String,
}

/// The longest ICU stay a row may claim, in hours (over 11 years). A larger `ICULOS` is a
/// broken file, and taken at face value it would overflow the row's time (found by fuzzing).
const MAX_ICULOS_HOURS: f64 = 100_000.0;

/// The byte order mark some tools write at the start of a UTF-8 file.
pub const BOM: &str = "\u{feff}";

/// The columns Vigil reads, in the order of [`Stay::absent`]'s bits: the vitals, the labs,
/// then `ICULOS`, `SepsisLabel`, `Age`, `Gender` and `HospAdmTime`.
pub fn read_columns() -> impl Iterator<Item = &'static str> {
    VITALS
        .iter()
        .copied()
        .chain(LABS.iter().map(|(column, _, _)| *column))
        .chain(OTHERS)
}

/// The columns Vigil reads besides the vitals and labs.
const OTHERS: [&str; 5] = ["ICULOS", "SepsisLabel", "Age", "Gender", "HospAdmTime"];
// One bit of `Stay::absent` each.
const _: () = assert!(VITALS.len() + LABS.len() + OTHERS.len() <= 32);

/// Vital columns and where they go.
const VITALS: &[&str] = &["HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "FiO2"];
/// Lab columns and the code for each (units as the challenge recorded them:
/// PaCO2 mmHg, lactate mmol/L, WBC 10^9/L, platelets 10^9/L; creatinine and bilirubin are
/// mg/dL there and are converted to the contract's umol/L).
const LABS: &[(&str, &str, f64)] = &[
    ("PaCO2", "paco2", 1.0),
    ("Lactate", "lactate", 1.0),
    ("WBC", "wbc", 1.0),
    ("Platelets", "platelets", 1.0),
    ("Creatinine", "creatinine", 88.4),
    ("Bilirubin_total", "bilirubin", 17.1),
    // Codes the contract does not name, stored for the sepsis model in the units the challenge
    // recorded: BUN mg/dL, glucose mg/dL, bicarbonate mmol/L, haemoglobin g/dL, potassium
    // mmol/L (docs/sepsis-screen.md).
    ("BUN", "bun", 1.0),
    ("Glucose", "glucose", 1.0),
    ("pH", "ph", 1.0),
    ("HCO3", "hco3", 1.0),
    ("Hgb", "hgb", 1.0),
    ("Potassium", "potassium", 1.0),
];

struct Columns {
    vitals: [Option<usize>; 8],
    labs: Vec<(usize, &'static str, f64)>,
    iculos: Option<usize>,
    label: Option<usize>,
    age: Option<usize>,
    gender: Option<usize>,
    hosp_adm: Option<usize>,
    count: usize,
    /// [`Stay::absent`].
    absent: u32,
}

fn columns(header: &str) -> Result<Columns, PsvError> {
    let names: Vec<&str> = header.trim_end_matches('\r').split('|').collect();
    // Every column Vigil reads, looked up once, in `read_columns`'s order.
    let found: Vec<Option<usize>> = read_columns()
        .map(|column| names.iter().position(|c| c.trim() == column))
        .collect();
    let (vital_cols, rest) = found.split_at(VITALS.len());
    let (lab_cols, other_cols) = rest.split_at(LABS.len());
    let mut vitals = [None; 8];
    vitals.copy_from_slice(vital_cols);
    let labs: Vec<(usize, &'static str, f64)> = LABS
        .iter()
        .zip(lab_cols)
        .filter_map(|((_, code, factor), i)| i.map(|i| (i, *code, *factor)))
        .collect();
    if vitals.iter().all(Option::is_none) && labs.is_empty() {
        return Err(PsvError {
            line: 1,
            reason: format!(
                "header names none of the columns Vigil reads ({}, ...)",
                VITALS.join(", ")
            ),
        });
    }
    let absent = found
        .iter()
        .enumerate()
        .filter(|(_, at)| at.is_none())
        .fold(0, |bits, (i, _)| bits | 1 << i);
    // `OTHERS`, in its order (five, so the default is never taken).
    let [iculos, label, age, gender, hosp_adm] =
        <[Option<usize>; OTHERS.len()]>::try_from(other_cols).unwrap_or_default();
    Ok(Columns {
        vitals,
        labs,
        iculos,
        label,
        age,
        gender,
        hosp_adm,
        count: names.len(),
        absent,
    })
}

fn number(field: &str, column: &str) -> Result<Option<f64>, String> {
    let f = field.trim();
    if f.is_empty() || f == "NaN" || f == "nan" {
        return Ok(None);
    }
    match f.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("column {column}: `{f}` is not a number")),
    }
}

/// Parses a whole file.
///
/// # Errors
/// The first malformed line (wrong number of fields, a value that is not a number, a label
/// other than 0 or 1).
pub fn parse(text: &str) -> Result<Stay, PsvError> {
    // A byte order mark (spreadsheets write one) is not part of the first column's name: kept,
    // it would hide that column (`HR` in the challenge's layout) from every row.
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| h).ok_or_else(|| PsvError {
        line: 1,
        reason: "empty file (no header row)".into(),
    })?;
    let cols = columns(header)?;
    let mut rows = Vec::new();
    let mut last_hour: i64 = 0;
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let err = |reason: String| PsvError {
            line: line_no,
            reason,
        };
        if fields.len() != cols.count {
            return Err(err(format!(
                "{} fields where the header has {}",
                fields.len(),
                cols.count
            )));
        }
        let get = |idx: Option<usize>, name: &str| -> Result<Option<f64>, PsvError> {
            idx.map_or(Ok(None), |i| number(fields[i], name).map_err(err))
        };
        let v = |k: usize| get(cols.vitals[k], VITALS[k]);
        let fio2 = v(7)?;
        // FiO2 is a fraction in the challenge data; > 0.21 means supplemental oxygen.
        let vitals = Vitals {
            hr: v(0)?,
            spo2: v(1)?,
            temp: v(2)?,
            sbp: v(3)?,
            map: v(4)?,
            dbp: v(5)?,
            rr: v(6)?,
            on_oxygen: fio2.map(|f| if f > 1.0 { f > 21.0 } else { f > 0.21 }),
            ..Vitals::default()
        };
        let mut labs = Vec::new();
        for &(idx, code, factor) in &cols.labs {
            if let Some(value) = number(fields[idx], code).map_err(err)? {
                labs.push(LabResult {
                    code: code.into(),
                    value: value * factor,
                    unit: None,
                });
            }
        }
        let hour = match get(cols.iculos, "ICULOS")? {
            Some(h) if (0.0..=MAX_ICULOS_HOURS).contains(&h) => h.round() as i64,
            Some(h) => {
                return Err(err(format!(
                    "column ICULOS: {h} is not an hour count from 0 to {MAX_ICULOS_HOURS}"
                )));
            }
            None => last_hour.saturating_add(1).min(MAX_ICULOS_HOURS as i64),
        };
        last_hour = hour;
        let label = match get(cols.label, "SepsisLabel")? {
            None => None,
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            Some(l) => return Err(err(format!("column SepsisLabel: {l} is not 0 or 1"))),
        };
        rows.push(Row {
            hour,
            vitals,
            labs,
            label,
            age: get(cols.age, "Age")?,
            gender: get(cols.gender, "Gender")?,
            hosp_adm_hours: get(cols.hosp_adm, "HospAdmTime")?,
        });
    }
    Ok(Stay {
        rows,
        absent: cols.absent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_iculos_is_refused_not_overflowed() {
        // From cargo fuzz (fuzz/ target psv): ICULOS 6.7e61 on one row, none on the next.
        let header = "HR|ICULOS|SepsisLabel";
        let text = format!("{header}\n80|{}|0\n81||0\n", "6".repeat(62));
        let e = parse(&text).expect_err("refused");
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("ICULOS"), "{}", e.reason);
        for bad in ["-1", "100001", "inf"] {
            assert!(parse(&format!("{header}\n80|{bad}|0\n")).is_err(), "{bad}");
        }
        // The edges are in, and a missing ICULOS counts on from the previous row.
        let rows = parse(&format!("{header}\n80|0|0\n81||0\n82|100000|0\n83||0\n"))
            .expect("ok")
            .rows;
        let hours: Vec<i64> = rows.iter().map(|r| r.hour).collect();
        assert_eq!(hours, [0, 1, 100_000, 100_000]);
    }

    const HEADER: &str = "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|BaseExcess|HCO3|FiO2|pH|PaCO2|SaO2|AST|BUN|Alkalinephos|Calcium|Chloride|Creatinine|Bilirubin_direct|Glucose|Lactate|Magnesium|Phosphate|Potassium|Bilirubin_total|TroponinI|Hct|Hgb|PTT|WBC|Fibrinogen|Platelets|Age|Gender|Unit1|Unit2|HospAdmTime|ICULOS|SepsisLabel";

    fn row(hr: &str, fio2: &str, lactate: &str, iculos: &str, label: &str) -> String {
        let mut f = vec!["NaN"; 41];
        f[0] = hr;
        f[10] = fio2;
        f[22] = lactate;
        f[39] = iculos;
        f[40] = label;
        f.join("|")
    }

    #[test]
    fn challenge_layout_parses() {
        let text = format!(
            "{HEADER}\n{}\n{}\n",
            row("97", "NaN", "NaN", "1", "0"),
            row("NaN", "0.5", "2.6", "2", "1")
        );
        let stay = parse(&text).expect("parse");
        // The challenge's layout names every column Vigil reads.
        assert_eq!(stay.absent, 0);
        let rows = stay.rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].vitals.hr, Some(97.0));
        assert_eq!((rows[0].hour, rows[0].label), (1, Some(false)));
        assert_eq!(rows[1].vitals.on_oxygen, Some(true));
        assert_eq!(rows[1].labs[0].code, "lactate");
        assert_eq!(rows[1].labs[0].value, 2.6);
        assert_eq!(rows[1].label, Some(true));
    }

    /// A file a spreadsheet saved reads as the same file without its byte order mark, and
    /// with Windows line ends: the first column (`HR`) is not lost.
    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_change_nothing() {
        let text = format!(
            "{HEADER}\n{}\n{}\n",
            row("97", "NaN", "NaN", "1", "0"),
            row("112", "0.5", "2.6", "2", "1")
        );
        let plain = parse(&text).expect("parse");
        assert_eq!(plain.rows[1].vitals.hr, Some(112.0));
        assert_eq!(plain.absent, 0);
        assert_eq!(parse(&format!("{BOM}{text}")).expect("with a BOM"), plain);
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse(&format!("{BOM}{crlf}")).expect("CRLF"), plain);
        // Only at the start: elsewhere it is not a number.
        let inside = format!("{HEADER}\n{BOM}97{}\n", &row("", "NaN", "NaN", "1", "0"));
        assert!(
            parse(&inside)
                .expect_err("a BOM in a row")
                .reason
                .contains("HR")
        );
    }

    /// A header that does not name a column Vigil reads leaves it out of every row, and the
    /// stay says which.
    #[test]
    fn columns_the_header_does_not_name_are_marked_absent() {
        let names: Vec<&str> = read_columns().collect();
        let absent = |header: &str| {
            let bits = parse(&format!("{header}\n")).expect(header).absent;
            let marked: Vec<&str> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & 1 << i != 0)
                .map(|(_, name)| *name)
                .collect();
            marked
        };
        assert!(absent(HEADER).is_empty());
        // Another hospital's name for the heart rate.
        assert_eq!(absent(&HEADER.replacen("HR|", "HeartRate|", 1)), ["HR"]);
        assert_eq!(absent(&HEADER.replace("|SepsisLabel", "")), ["SepsisLabel"]);
        let few = absent("Lactate|HR|ICULOS");
        assert_eq!(few.len(), names.len() - 3, "{few:?}");
        assert!(few.iter().all(|c| !["HR", "Lactate", "ICULOS"].contains(c)));
        assert_eq!(few[0], "O2Sat");
        assert_eq!(names.len(), 25);
    }

    #[test]
    fn malformed_rows_name_the_line() {
        let bad = format!(
            "{HEADER}\n{}\n{}\n",
            row("97", "NaN", "NaN", "1", "0"),
            row("9x", "NaN", "NaN", "2", "0")
        );
        let e = parse(&bad).expect_err("bad number");
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("HR") && e.reason.contains("9x"), "{e}");
        let short = format!("{HEADER}\n97|98\n");
        assert_eq!(parse(&short).expect_err("short").line, 2);
        let label = format!("{HEADER}\n{}\n", row("97", "NaN", "NaN", "1", "2"));
        assert!(
            parse(&label)
                .expect_err("label")
                .reason
                .contains("SepsisLabel")
        );
        assert_eq!(parse("").expect_err("empty").line, 1);
        assert_eq!(parse("A|B\n1|2\n").expect_err("no columns").line, 1);
    }
}
