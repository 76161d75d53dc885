//! Checks of answers: an error's code and `ErrorInfo` reason, the fields
//! its `BadRequest` names, and figures to within float noise.

use tonic::{Code, Status};
use tonic_types::StatusExt;
use verdad::proto::verdad::v1 as pb;

/// Checks the status code and the `ErrorInfo` reason of an error.
#[track_caller]
pub(crate) fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "unexpected reason in {status:?}");
    assert_eq!(info.domain, "verdad");
}

/// The fields named by the `BadRequest` of an INVALID_ARGUMENT status.
#[track_caller]
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    assert_error(status, Code::InvalidArgument, "INVALID_ARGUMENT");
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// The field paths of a status's BadRequest, sorted and without repeats.
#[track_caller]
pub(crate) fn field_set(status: &Status) -> Vec<String> {
    let mut fields = violated_fields(status);
    fields.sort();
    fields.dedup();
    fields
}

#[track_caller]
pub(crate) fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got nothing"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "expected {expected}, got {actual}"
    );
}

#[track_caller]
pub(crate) fn assert_rate(rate: &Option<pb::Rate>, numerator: i64, denominator: i64) {
    let rate = rate.as_ref().expect("no rate");
    assert_eq!(
        (rate.numerator, rate.denominator),
        (numerator, denominator),
        "rate"
    );
    if denominator == 0 {
        assert_eq!(rate.value, None);
        assert_eq!(rate.wilson_lower, None);
    } else {
        assert_close(rate.value, numerator as f64 / denominator as f64);
        let (low, high) = (rate.wilson_lower.unwrap(), rate.wilson_upper.unwrap());
        assert!(low <= rate.value.unwrap() && rate.value.unwrap() <= high);
    }
}

#[track_caller]
pub(crate) fn assert_distribution(
    d: &Option<pb::Distribution>,
    count: i64,
    median: Option<f64>,
    p90: Option<f64>,
) {
    let d = d.as_ref().expect("no distribution");
    assert_eq!(d.count, count);
    match (median, p90) {
        (Some(median), Some(p90)) => {
            assert_close(d.median, median);
            assert_close(d.p90, p90);
        }
        _ => assert_eq!((d.median, d.p90), (None, None)),
    }
}
