//! Order statistics of a sample (min, p50, p95, max, mean) and lightpod / runc ratios.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the
//! value at rank ⌈p/100 · n⌉ (1-based), so every reported figure is one that was measured,
//! never an interpolation between two runs.

use serde::{Deserialize, Serialize};

/// The order statistics of one sample, in the unit of its values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many values.
    pub n: usize,
    /// The smallest value.
    pub min: f64,
    /// The median (nearest rank).
    pub p50: f64,
    /// The 95th percentile (nearest rank).
    pub p95: f64,
    /// The largest value.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values`; `None` when there are none (or only NaNs, which are dropped).
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        Some(Summary {
            n,
            min: sorted[0],
            p50: nearest_rank(&sorted, 50.0),
            p95: nearest_rank(&sorted, 95.0),
            max: sorted[n - 1],
            mean: sorted.iter().sum::<f64>() / n as f64,
        })
    }

    /// This summary divided figure by figure by `base` (lightpod / runc); `n` is this one's.
    /// A figure whose base is zero gives `None` for the whole ratio.
    pub fn ratio_to(&self, base: &Summary) -> Option<Ratio> {
        Some(Ratio {
            min: ratio(self.min, base.min)?,
            p50: ratio(self.p50, base.p50)?,
            p95: ratio(self.p95, base.p95)?,
            max: ratio(self.max, base.max)?,
            mean: ratio(self.mean, base.mean)?,
        })
    }
}

/// Two summaries divided figure by figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// min / min.
    pub min: f64,
    /// p50 / p50.
    pub p50: f64,
    /// p95 / p95.
    pub p95: f64,
    /// max / max.
    pub max: f64,
    /// mean / mean.
    pub mean: f64,
}

/// `value / base`, or `None` when the base is zero or either is not finite.
pub fn ratio(value: f64, base: f64) -> Option<f64> {
    let r = value / base;
    (base != 0.0 && r.is_finite()).then_some(r)
}

/// The value at rank ⌈p/100 · n⌉ of a sorted, non-empty slice (rank 1 for p = 0).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let cases: [(&str, Vec<f64>, f64, f64); 5] = [
            ("one value", vec![7.0], 7.0, 7.0),
            ("two values", vec![2.0, 1.0], 1.0, 2.0),
            ("odd count", vec![5.0, 1.0, 3.0], 3.0, 5.0),
            ("1..=20", (1..=20).map(f64::from).collect(), 10.0, 19.0),
            ("1..=100", (1..=100).map(f64::from).collect(), 50.0, 95.0),
        ];
        for (name, values, p50, p95) in cases {
            let s = Summary::of(&values).unwrap();
            assert_eq!((s.p50, s.p95), (p50, p95), "case {name}");
            assert_eq!(s.n, values.len(), "case {name}");
        }
    }

    #[test]
    fn summary_has_extremes_and_mean_and_ignores_nan() {
        let s = Summary::of(&[3.0, f64::NAN, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.n, s.min, s.max, s.mean), (4, 1.0, 10.0, 4.0));
        assert!(Summary::of(&[]).is_none(), "nothing to summarise");
        assert!(Summary::of(&[f64::NAN]).is_none(), "only NaN");
    }

    #[test]
    fn ratios_divide_figure_by_figure() {
        let lightpod = Summary::of(&[20.0, 40.0]).unwrap();
        let runc = Summary::of(&[10.0, 10.0]).unwrap();
        let r = lightpod.ratio_to(&runc).unwrap();
        assert_eq!((r.min, r.p50, r.max, r.mean), (2.0, 2.0, 4.0, 3.0));

        let zero = Summary::of(&[0.0]).unwrap();
        assert!(
            lightpod.ratio_to(&zero).is_none(),
            "a zero base has no ratio"
        );
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }
}
