//! What monitors and labs tell the engine about a patient, in clinical units, already validated
//! by the stream adapter (ranges, types). Every measurement is optional.

use serde::Serialize;

/// ACVPU consciousness (NEWS2): Alert, new Confusion, responds to Voice, to Pain, Unresponsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Consciousness {
    A,
    C,
    V,
    P,
    U,
}

impl Consciousness {
    /// Parses the contract's one-letter code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "A" => Self::A,
            "C" => Self::C,
            "V" => Self::V,
            "P" => Self::P,
            "U" => Self::U,
            _ => return None,
        })
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::C => "C",
            Self::V => "V",
            Self::P => "P",
            Self::U => "U",
        }
    }
}

/// NEWS2 SpO2 scale: 1 by default, 2 for hypercapnic respiratory failure. On the wire it is the
/// number 1 or 2, as in `vitals.observation.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spo2Scale {
    #[default]
    Scale1,
    Scale2,
}

impl Serialize for Spo2Scale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            Spo2Scale::Scale1 => 1,
            Spo2Scale::Scale2 => 2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vitals_serialize_in_the_contract_shape() {
        let v = Vitals {
            hr: Some(112.0),
            spo2_scale: Some(Spo2Scale::Scale2),
            on_oxygen: Some(true),
            consciousness: Some(Consciousness::V),
            ..Vitals::default()
        };
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"hr": 112.0, "spo2Scale": 2, "onOxygen": true, "consciousness": "V"})
        );
    }
}

/// One `vitals.observation.v1` reading. Units: /min, %, degrees C, mmHg.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vitals {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spo2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spo2_scale: Option<Spo2Scale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_oxygen: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dbp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consciousness: Option<Consciousness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs: Option<f64>,
}

/// One `lab.result.v1`. Labs are kept per code; scoring them arrives with qSOFA/SIRS.
#[derive(Debug, Clone, PartialEq)]
pub struct LabResult {
    pub code: String,
    pub value: f64,
    pub unit: Option<String>,
}

/// Sex as the admission feed records it (`patient.admitted.v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

/// A patient's admission to a unit (`patient.admitted.v1`): what scores and models may use
/// beside the window. A patient without one is scored as before.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// Admission to this unit.
    pub admitted_at: crate::time::Timestamp,
    /// Admission to the hospital, when the feed knows it.
    pub hospital_admitted_at: Option<crate::time::Timestamp>,
    /// Whole years, 0..=130.
    pub age: Option<u8>,
    pub sex: Option<Sex>,
}
