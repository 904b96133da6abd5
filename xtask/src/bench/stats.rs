//! Summary statistics of repeated measurements: median and 90th percentile.

/// The median of `xs` (mean of the two middle values for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let s = sorted(xs);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The 90th percentile of `xs` (nearest rank: the smallest value with at least 90% at or below it).
pub fn p90(xs: &[f64]) -> f64 {
    let s = sorted(xs);
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = (0.9 * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_count_is_the_middle_value() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_pair() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        let xs: Vec<f64> = (1..=10).map(f64::from).rev().collect();
        assert_eq!(p90(&xs), 9.0);
        assert_eq!(p90(&[7.0]), 7.0);
        let xs: Vec<f64> = (1..=30).map(f64::from).collect();
        assert_eq!(p90(&xs), 27.0);
    }

    #[test]
    fn empty_input_gives_nan() {
        assert!(median(&[]).is_nan());
        assert!(p90(&[]).is_nan());
    }
}
