//! `--acuity-mix` (fill and export): a ward that is not calm, the workload issue 17 compares with
//! Apache Flink. Patients are stable (70 %), unwell (20 %) or very unwell (10 %); every reading
//! is noisy (gaussian around the acuity's means) and each vital is present with probability 0.7.
//! The generator is seeded, so every run stores the same readings.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// How sick a simulated patient is, for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acuity {
    Stable,
    Unwell,
    VeryUnwell,
}

impl Acuity {
    /// Patient `p`'s acuity: one in ten very unwell, two in ten unwell.
    pub fn of_patient(p: u64) -> Self {
        match p % 10 {
            0 => Acuity::VeryUnwell,
            1 | 2 => Acuity::Unwell,
            _ => Acuity::Stable,
        }
    }

    /// `(mean, standard deviation)` of HR, RR, SpO2, temperature and systolic BP.
    fn means(self) -> [(f64, f64); 5] {
        match self {
            Acuity::Stable => [
                (76.0, 8.0),
                (15.0, 2.0),
                (97.0, 1.2),
                (36.9, 0.3),
                (124.0, 10.0),
            ],
            Acuity::Unwell => [
                (104.0, 10.0),
                (22.0, 2.5),
                (94.0, 1.5),
                (38.2, 0.4),
                (102.0, 10.0),
            ],
            Acuity::VeryUnwell => [
                (124.0, 12.0),
                (26.0, 3.0),
                (91.0, 2.0),
                (38.8, 0.5),
                (90.0, 10.0),
            ],
        }
    }
}

/// The values of one reading; `None` where the vital was not measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VitalSigns {
    pub hr: Option<f64>,
    pub rr: Option<f64>,
    pub spo2: Option<f64>,
    pub temp: Option<f64>,
    pub sbp: Option<f64>,
    pub consciousness: Option<&'static str>,
}

/// Draws readings for the acuity mix.
pub struct Mix {
    rng: StdRng,
}

/// Chance that a vital is present in a reading.
const PRESENT: f64 = 0.7;

impl Default for Mix {
    fn default() -> Self {
        Self {
            rng: StdRng::seed_from_u64(20_261_201),
        }
    }
}

impl Mix {
    pub fn reading(&mut self, acuity: Acuity) -> VitalSigns {
        let [hr, rr, spo2, temp, sbp] = acuity.means();
        let mut draw = |(mean, sd): (f64, f64), lo: f64, hi: f64| {
            if !self.rng.random_bool(PRESENT) {
                return None;
            }
            let n = Normal::new(mean, sd).map_or(mean, |d| d.sample(&mut self.rng));
            // One decimal, inside the contract's physiological ranges.
            Some(((n * 10.0).round() / 10.0).clamp(lo, hi))
        };
        let reading = VitalSigns {
            hr: draw(hr, 20.0, 300.0),
            rr: draw(rr, 4.0, 80.0),
            spo2: draw(spo2, 50.0, 100.0),
            temp: draw(temp, 30.0, 44.0),
            sbp: draw(sbp, 40.0, 300.0),
            consciousness: None,
        };
        let confused = acuity == Acuity::VeryUnwell && self.rng.random_bool(0.1);
        VitalSigns {
            consciousness: self.rng.random_bool(PRESENT).then_some(if confused {
                "C"
            } else {
                "A"
            }),
            ..reading
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_seventy_twenty_ten_and_seeded() {
        let counts = (0..1000u64).fold([0; 3], |mut c, p| {
            c[Acuity::of_patient(p) as usize] += 1;
            c
        });
        assert_eq!(counts, [700, 200, 100]);
        let (mut a, mut b) = (Mix::default(), Mix::default());
        for _ in 0..100 {
            assert_eq!(a.reading(Acuity::Unwell), b.reading(Acuity::Unwell));
        }
    }

    #[test]
    fn about_seven_in_ten_vitals_are_present_and_in_range() {
        let mut mix = Mix::default();
        let (mut present, mut total) = (0, 0);
        for _ in 0..10_000 {
            let r = mix.reading(Acuity::VeryUnwell);
            for v in [r.hr, r.rr, r.spo2, r.temp, r.sbp] {
                total += 1;
                if let Some(v) = v {
                    present += 1;
                    assert!((4.0..=300.0).contains(&v), "{v}");
                }
            }
            if let Some(s) = r.spo2 {
                assert!(s <= 100.0);
            }
        }
        let share = f64::from(present) / f64::from(total);
        assert!((0.68..0.72).contains(&share), "{share}");
    }
}
