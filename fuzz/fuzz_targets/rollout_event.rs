//! The rollback Lambda's event parsing on arbitrary JSON: EventBridge alarm
//! changes, direct alarm actions, SNS records (whose message is JSON inside
//! a string), schedules and HTTP shapes; plus the old stage-variable
//! bookkeeping (`tidegate_*`) the Lambda migrates from once.
//!
//! Checked: parsed events serialise; every alarm name is non-empty and
//! within CloudWatch's limit; a JSON object of strings read as old stage
//! variables: the lenient decoder never fails, pauses the stage iff the
//! strict one fails, and its record serialises and reads back unchanged.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tidegate_policy::rollout::{
    parse, parse_time, Input, LegacyBookkeeping, ManualCommand, StageRecord, MAX_ALARM_NAME,
};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(input) = parse(&event) {
        let _ = serde_json::to_string(&input);
        if let Input::Alarms { events, .. } = &input {
            for ev in events {
                let alarm = &ev.transition.alarm;
                assert!(
                    !alarm.is_empty() && alarm.chars().count() <= MAX_ALARM_NAME,
                    "{alarm:?}"
                );
                let _ = ev.trigger();
                let _ = ev.transition.id();
            }
        }
    }
    match &event {
        Value::String(s) => {
            let _ = parse_time(s);
            let _ = ManualCommand::from_path(s);
        }
        Value::Object(map) => {
            let variables: Option<BTreeMap<String, String>> = map
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect();
            if let Some(variables) = variables {
                check_bookkeeping(&variables);
            }
        }
        _ => {}
    }
});

fn check_bookkeeping(variables: &BTreeMap<String, String>) {
    let strict = LegacyBookkeeping::decode(variables);
    let (lenient, errors) = LegacyBookkeeping::decode_or_pause(variables, 1_700_000_000_000);
    assert_eq!(strict.is_err(), !errors.is_empty());
    if let Ok(book) = strict {
        assert_eq!(lenient, book);
    } else {
        assert!(lenient.paused.is_some());
    }
    let watched = ["orders-5xx".to_owned(), "orders-canary-5xx".to_owned()];
    let (record, _) = lenient.into_record(&watched);
    let text = serde_json::to_string(&record).unwrap();
    assert_eq!(serde_json::from_str::<StageRecord>(&text).unwrap(), record);
}
