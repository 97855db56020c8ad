//! What invoked the Lambda: JSON in, a typed [`Input`] out, never a panic.
//!
//! Recognised, by shape:
//! - EventBridge `"CloudWatch Alarm State Change"` (metric, metric-math and
//!   composite alarms: the alarm's `configuration` is only inspected loosely,
//!   because its typed form differs per kind);
//! - a CloudWatch alarm's direct Lambda action (`alarmData`, same fields);
//! - SNS notifications from an alarm (`Records[].Sns.Message` is a JSON
//!   *string* with `AlarmName`, `NewStateValue`, `StateChangeTime`, …);
//! - EventBridge `"Scheduled Event"` (rules, and EventBridge Scheduler);
//! - HTTP requests from API Gateway REST (v1), HTTP APIs (v2), Function URLs
//!   and ALB: only classified, `lambda_http` parses them.
//!
//! CloudWatch writes timestamps as `2019-10-02T17:04:40.985+0000` (no colon
//! in the offset); both that and RFC 3339 are accepted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::AlarmState;
use super::trigger::{Transition, Trigger};
use crate::auth::timestamp::parse_rfc3339_ms;
use crate::config::{ManagedStage, RollbackPolicy};

/// Longest alarm name CloudWatch allows.
pub const MAX_ALARM_NAME: usize = 255;
/// Most SNS records accepted in one event (Lambda delivers one).
pub const MAX_RECORDS: usize = 32;

/// A parsed Lambda event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Alarm state changes: one for EventBridge or a direct alarm action,
    /// one per SNS record.
    Alarms {
        /// The changes that parsed.
        events: Vec<AlarmEvent>,
        /// SNS records that did not (logged; the others are still handled).
        rejected: Vec<EventError>,
    },
    /// The scheduled re-evaluation.
    Schedule {
        /// The event's `time`, if it parsed.
        time_ms: Option<u64>,
    },
    /// A control-API request, for `lambda_http`.
    Http(HttpRequest),
    /// A well-formed event this Lambda has no use for (e.g. an alarm
    /// configuration change): acknowledged and logged.
    Ignored {
        /// What it was.
        what: String,
    },
}

/// One alarm state change, from whichever source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmEvent {
    /// The change.
    pub transition: Transition,
    /// Where it came from.
    pub source: AlarmSource,
    /// The kind of alarm, as far as the event shows.
    pub kind: AlarmKind,
    /// CloudWatch's reason text.
    pub reason: Option<String>,
    /// The alarm's ARN.
    pub alarm_arn: Option<String>,
}

impl AlarmEvent {
    /// The decision trigger.
    pub fn trigger(&self) -> Trigger {
        Trigger::AlarmTransition(self.transition.clone())
    }
}

/// Delivery path of an alarm event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmSource {
    /// EventBridge rule.
    EventBridge,
    /// SNS subscription.
    Sns,
    /// The alarm's own Lambda action.
    AlarmAction,
}

/// What kind of alarm changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// One metric.
    Metric,
    /// A metric-math expression.
    MetricMath,
    /// A composite alarm (a rule over other alarms).
    Composite,
    /// The event does not say.
    Unknown,
}

/// An HTTP request, classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Which front door.
    pub via: HttpVia,
    /// Method, upper case.
    pub method: String,
    /// Path as received.
    pub path: String,
}

/// The HTTP front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpVia {
    /// API Gateway REST API (payload 1.0).
    ApiGatewayV1,
    /// API Gateway HTTP API (payload 2.0).
    ApiGatewayV2,
    /// Lambda Function URL.
    FunctionUrl,
    /// Application Load Balancer.
    Alb,
}

/// Why an event could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventError {
    /// The event is not a JSON object.
    #[error("event is not a JSON object")]
    NotAnObject,
    /// The event matches none of the known shapes.
    #[error("unrecognised event: expected an alarm state change, an SNS alarm notification, a scheduled event or an HTTP request")]
    Unrecognised,
    /// A required field is missing or has the wrong type.
    #[error("{event}: `{field}` is missing or not a {expected}")]
    Field {
        /// The event kind.
        event: &'static str,
        /// JSON path of the field.
        field: &'static str,
        /// Expected type.
        expected: &'static str,
    },
    /// A field has a value outside what AWS sends.
    #[error("{event}: `{field}` = {value:?} is invalid: expected {expected}")]
    Value {
        /// The event kind.
        event: &'static str,
        /// JSON path of the field.
        field: &'static str,
        /// The value (cut to 64 characters).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An SNS record's message is not a CloudWatch alarm notification.
    #[error("SNS record {index}: {detail}")]
    SnsRecord {
        /// Record index.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// More SNS records than accepted.
    #[error("SNS event has {found} records; at most {max} are accepted")]
    TooManyRecords {
        /// Records found.
        found: usize,
        /// Most accepted.
        max: usize,
    },
}

const EB_ALARM: &str = "EventBridge alarm state change";
const ALARM_ACTION: &str = "alarm Lambda action";
const SNS_ALARM: &str = "SNS alarm notification";

/// Parses a Lambda event.
pub fn parse(event: &Value) -> Result<Input, EventError> {
    let obj = event.as_object().ok_or(EventError::NotAnObject)?;
    if let Some(records) = obj.get("Records") {
        return parse_sns(records);
    }
    if let Some(detail_type) = obj.get("detail-type").and_then(Value::as_str) {
        let source = obj
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return match (detail_type, source) {
            ("CloudWatch Alarm State Change", "aws.cloudwatch") => {
                let detail = obj.get("detail").ok_or(EventError::Field {
                    event: EB_ALARM,
                    field: "detail",
                    expected: "object",
                })?;
                let ev = parse_alarm_detail(
                    detail,
                    EB_ALARM,
                    AlarmSource::EventBridge,
                    event.get("resources"),
                )?;
                Ok(Input::Alarms {
                    events: vec![ev],
                    rejected: Vec::new(),
                })
            }
            ("Scheduled Event", _) => Ok(Input::Schedule {
                time_ms: obj.get("time").and_then(Value::as_str).and_then(parse_time),
            }),
            (other, source) => Ok(Input::Ignored {
                what: format!("{} from {}", cut(other), cut(source)),
            }),
        };
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.cloudwatch") {
        if let Some(data) = obj.get("alarmData") {
            let arn = obj.get("alarmArn").map(|a| Value::Array(vec![a.clone()]));
            let ev =
                parse_alarm_detail(data, ALARM_ACTION, AlarmSource::AlarmAction, arn.as_ref())?;
            return Ok(Input::Alarms {
                events: vec![ev],
                rejected: Vec::new(),
            });
        }
    }
    if let Some(http) = classify_http(event) {
        return Ok(Input::Http(http));
    }
    Err(EventError::Unrecognised)
}

/// The managed stages that watch `alarm` (as a stage or canary alarm).
pub fn stages_watching<'p>(policy: &'p RollbackPolicy, alarm: &str) -> Vec<&'p ManagedStage> {
    policy
        .stages
        .iter()
        .filter(|s| {
            s.stage_alarms
                .iter()
                .chain(&s.canary_alarms)
                .any(|a| a == alarm)
        })
        .collect()
}

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// RFC 3339, or CloudWatch's `+0000` offsets.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let n = b.len();
    let tail = b.get(n.checked_sub(5)?..)?;
    let numeric_offset = matches!(tail.first(), Some(b'+' | b'-'))
        && tail.iter().skip(1).all(u8::is_ascii_digit)
        && n > 19;
    if numeric_offset {
        let (head, off) = s.split_at(n - 2);
        parse_rfc3339_ms(&format!("{head}:{off}"))
    } else {
        parse_rfc3339_ms(s)
    }
}

/// The string at `field`, or the error naming the field.
fn string_field<'v>(
    v: Option<&'v Value>,
    event: &'static str,
    field: &'static str,
) -> Result<&'v str, EventError> {
    v.and_then(Value::as_str).ok_or(EventError::Field {
        event,
        field,
        expected: "string",
    })
}

fn alarm_name(
    v: Option<&Value>,
    event: &'static str,
    field: &'static str,
) -> Result<String, EventError> {
    let name = string_field(v, event, field)?;
    if name.is_empty() || name.chars().count() > MAX_ALARM_NAME {
        return Err(EventError::Value {
            event,
            field,
            value: cut(name),
            expected: "an alarm name of 1 to 255 characters",
        });
    }
    Ok(name.to_owned())
}

fn state(
    v: Option<&Value>,
    event: &'static str,
    field: &'static str,
) -> Result<AlarmState, EventError> {
    let s = string_field(v, event, field)?;
    AlarmState::from_aws(s).ok_or_else(|| EventError::Value {
        event,
        field,
        value: cut(s),
        expected: "OK, ALARM or INSUFFICIENT_DATA",
    })
}

fn time(v: Option<&Value>, event: &'static str, field: &'static str) -> Result<u64, EventError> {
    let s = string_field(v, event, field)?;
    parse_time(s).ok_or_else(|| EventError::Value {
        event,
        field,
        value: cut(s),
        expected: "a timestamp like 2024-05-01T12:00:00.000+0000",
    })
}

/// `detail` of the EventBridge event, or `alarmData` of the alarm action.
fn parse_alarm_detail(
    detail: &Value,
    event: &'static str,
    source: AlarmSource,
    resources: Option<&Value>,
) -> Result<AlarmEvent, EventError> {
    let alarm = alarm_name(detail.get("alarmName"), event, "alarmName")?;
    let st = detail.get("state");
    let new_state = state(st.and_then(|s| s.get("value")), event, "state.value")?;
    let timestamp_ms = time(
        st.and_then(|s| s.get("timestamp")),
        event,
        "state.timestamp",
    )?;
    let previous_state = detail
        .get("previousState")
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .and_then(AlarmState::from_aws);
    let reason = st
        .and_then(|s| s.get("reason"))
        .and_then(Value::as_str)
        .map(cut_reason);
    let config = detail.get("configuration");
    let kind = if config.and_then(|c| c.get("alarmRule")).is_some() {
        AlarmKind::Composite
    } else {
        match config
            .and_then(|c| c.get("metrics"))
            .and_then(Value::as_array)
        {
            Some(ms) if ms.iter().any(|m| m.get("expression").is_some()) => AlarmKind::MetricMath,
            Some(ms) if !ms.is_empty() => AlarmKind::Metric,
            _ => AlarmKind::Unknown,
        }
    };
    let alarm_arn = resources
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(AlarmEvent {
        transition: Transition {
            alarm,
            new_state,
            previous_state,
            timestamp_ms,
            suppressed: is_suppressed(detail),
        },
        source,
        kind,
        reason,
        alarm_arn,
    })
}

/// Whether the alarm's actions are suppressed or muted, as the event says:
/// `state.actionsSuppressedBy` (composite alarms with suppression:
/// `WaitPeriod`, `ExtensionPeriod` or `Alarm`), or mute details (alarm mute
/// rules) under a `mute…`/`muted…` key of the detail or its state. Such an
/// alarm must not trigger automation.
fn is_suppressed(detail: &Value) -> bool {
    let present = |v: &Value| match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) | Value::Number(_) => true,
    };
    let muted = |o: &serde_json::Map<String, Value>| {
        o.iter().any(|(k, v)| {
            let k = k.to_ascii_lowercase();
            (k.starts_with("mute") || k.starts_with("muted")) && present(v)
        })
    };
    let state = detail.get("state");
    state
        .and_then(|s| s.get("actionsSuppressedBy"))
        .is_some_and(present)
        || detail.as_object().is_some_and(muted)
        || state.and_then(Value::as_object).is_some_and(muted)
}

fn cut_reason(s: &str) -> String {
    s.chars().take(1024).collect()
}

fn parse_sns(records: &Value) -> Result<Input, EventError> {
    let records = records.as_array().ok_or(EventError::Field {
        event: SNS_ALARM,
        field: "Records",
        expected: "array",
    })?;
    let is_sns = |r: &Value| r.get("EventSource").and_then(Value::as_str) == Some("aws:sns");
    if records.is_empty() || !records.iter().all(is_sns) {
        return Ok(Input::Ignored {
            what: "records that are not all SNS notifications".into(),
        });
    }
    if records.len() > MAX_RECORDS {
        return Err(EventError::TooManyRecords {
            found: records.len(),
            max: MAX_RECORDS,
        });
    }
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match parse_sns_record(record) {
            Ok(ev) => events.push(ev),
            Err(e) => rejected.push(EventError::SnsRecord {
                index,
                detail: e.to_string(),
            }),
        }
    }
    Ok(Input::Alarms { events, rejected })
}

fn parse_sns_record(record: &Value) -> Result<AlarmEvent, EventError> {
    let message = string_field(
        record.get("Sns").and_then(|s| s.get("Message")),
        SNS_ALARM,
        "Sns.Message",
    )?;
    let m: Value = serde_json::from_str(message).map_err(|_| EventError::Value {
        event: SNS_ALARM,
        field: "Sns.Message",
        value: cut(message),
        expected: "a CloudWatch alarm notification (JSON)",
    })?;
    let alarm = alarm_name(m.get("AlarmName"), SNS_ALARM, "AlarmName")?;
    let new_state = state(m.get("NewStateValue"), SNS_ALARM, "NewStateValue")?;
    let timestamp_ms = time(m.get("StateChangeTime"), SNS_ALARM, "StateChangeTime")?;
    let previous_state = m
        .get("OldStateValue")
        .and_then(Value::as_str)
        .and_then(AlarmState::from_aws);
    let trigger = m.get("Trigger");
    let kind = if m.get("AlarmRule").is_some() {
        AlarmKind::Composite
    } else {
        match trigger {
            Some(t)
                if t.get("Metrics")
                    .and_then(Value::as_array)
                    .is_some_and(|ms| ms.iter().any(|x| x.get("Expression").is_some())) =>
            {
                AlarmKind::MetricMath
            }
            Some(t) if t.get("MetricName").is_some() || t.get("Metrics").is_some() => {
                AlarmKind::Metric
            }
            _ => AlarmKind::Unknown,
        }
    };
    Ok(AlarmEvent {
        transition: Transition {
            alarm,
            new_state,
            previous_state,
            timestamp_ms,
            suppressed: false,
        },
        source: AlarmSource::Sns,
        kind,
        reason: m
            .get("NewStateReason")
            .and_then(Value::as_str)
            .map(cut_reason),
        alarm_arn: m.get("AlarmArn").and_then(Value::as_str).map(str::to_owned),
    })
}

fn classify_http(event: &Value) -> Option<HttpRequest> {
    let ctx = event.get("requestContext")?.as_object()?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if event.get("version").and_then(Value::as_str) == Some("2.0") {
        let http = ctx.get("http")?;
        let method = s(http.get("method"))?;
        let path = s(event.get("rawPath")).or_else(|| s(http.get("path")))?;
        let domain = ctx
            .get("domainName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let via = if domain.contains(".lambda-url.") {
            HttpVia::FunctionUrl
        } else {
            HttpVia::ApiGatewayV2
        };
        return Some(HttpRequest {
            via,
            method: method.to_ascii_uppercase(),
            path,
        });
    }
    let method = s(event.get("httpMethod"))?;
    let path = s(event.get("path"))?;
    let via = if ctx.contains_key("elb") {
        HttpVia::Alb
    } else {
        HttpVia::ApiGatewayV1
    };
    Some(HttpRequest {
        via,
        method: method.to_ascii_uppercase(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cloudwatch_and_rfc3339_times() {
        assert_eq!(
            parse_time("2019-10-02T17:04:40.985+0000"),
            Some(1_570_035_880_985)
        );
        assert_eq!(parse_time("2019-10-02T17:04:40Z"), Some(1_570_035_880_000));
        assert_eq!(
            parse_time("2019-10-02T19:04:40.985+0200"),
            Some(1_570_035_880_985)
        );
        assert_eq!(
            parse_time("2019-10-02T17:04:40.985+00:00"),
            Some(1_570_035_880_985)
        );
        for bad in [
            "",
            "+0000",
            "2019-10-02",
            "2019-10-02T17:04:40.985+00",
            "2019-10-02T17:04:40.985+9900",
            "x019-10-02T17:04:40.985+0000",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_non_objects_and_unknown_shapes() {
        assert_eq!(parse(&json!([1])), Err(EventError::NotAnObject));
        assert_eq!(parse(&json!({"hello": 1})), Err(EventError::Unrecognised));
        assert!(matches!(
            parse(
                &json!({"detail-type": "CloudWatch Alarm Configuration Change", "source": "aws.cloudwatch"})
            ),
            Ok(Input::Ignored { .. })
        ));
        assert!(matches!(
            parse(&json!({"Records": [{"eventSource": "aws:sqs"}]})),
            Ok(Input::Ignored { .. })
        ));
    }

    #[test]
    fn alarm_event_field_errors_name_the_field() {
        let ev = json!({
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "detail": {"alarmName": "a", "state": {"value": "PANIC", "timestamp": "2019-10-02T17:04:40Z"}}
        });
        let err = parse(&ev).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EventBridge alarm state change: `state.value` = \"PANIC\" is invalid: expected OK, ALARM or INSUFFICIENT_DATA"
        );
        let long = "x".repeat(256);
        let ev = json!({
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "detail": {"alarmName": long, "state": {"value": "OK", "timestamp": "2019-10-02T17:04:40Z"}}
        });
        assert!(matches!(
            parse(&ev),
            Err(EventError::Value {
                field: "alarmName",
                ..
            })
        ));
    }

    #[test]
    fn too_many_sns_records() {
        let rec = json!({"EventSource": "aws:sns", "Sns": {"Message": "{}"}});
        let ev = json!({"Records": vec![rec; MAX_RECORDS + 1]});
        assert_eq!(
            parse(&ev),
            Err(EventError::TooManyRecords {
                found: MAX_RECORDS + 1,
                max: MAX_RECORDS
            })
        );
    }
}
