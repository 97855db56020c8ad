use super::*;

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn random() -> [u8; TRACE_RANDOM_BYTES] {
    let mut r = [0u8; TRACE_RANDOM_BYTES];
    for (i, b) in r.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    r
}

#[test]
fn parses_the_spec_example() {
    let tp = TraceParent::parse(VALID).unwrap();
    assert_eq!(tp.flags, 1);
    assert_eq!(tp.trace_id[0], 0x4b);
    assert_eq!(tp.parent_id[7], 0xb7);
}

#[test]
fn rejects_invalid_traceparents() {
    use TraceParentError::*;
    let cases = [
        ("", Layout),
        ("00", Layout),
        (&VALID[..54], Layout),
        (&format!("{VALID}-"), Layout),
        (&format!("{VALID}0"), Layout),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ForbiddenVersion,
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            NotHex,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            NotHex,
        ),
        (
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            NotHex,
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ZeroTraceId,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            ZeroParentId,
        ),
        (
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Layout,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            NotHex,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            Layout,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{e9}",
            Layout,
        ),
        (&format!(" {}", &VALID[1..]), NotHex),
    ];
    for (text, want) in cases {
        assert_eq!(TraceParent::parse(text), Err(want), "{text:?}");
    }
}

#[test]
fn higher_versions_are_forward_compatible() {
    let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(TraceParent::parse(v1).is_ok());
    assert!(TraceParent::parse(&format!("{v1}-what-the-future-holds")).is_ok());
    assert_eq!(
        TraceParent::parse(&format!("{v1}x")),
        Err(TraceParentError::Layout)
    );
    let ctx = TraceContext::from_headers(
        &h(&[(
            "traceparent",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x",
        )]),
        random(),
    );
    // Passed on as version 00, unknown flag bits cleared.
    assert!(ctx.is_continued());
    assert!(ctx
        .traceparent()
        .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert!(ctx.traceparent().ends_with("-01"));
}

#[test]
fn continues_a_valid_trace_with_own_span() {
    let ctx = TraceContext::from_headers(
        &h(&[
            ("TraceParent", VALID),
            ("tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
        ]),
        random(),
    );
    assert!(ctx.is_continued());
    assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(ctx.span_id(), "1112131415161718");
    assert_eq!(
        ctx.headers(),
        h(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-1112131415161718-01"
            ),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ])
    );
    // Unsampled stays unsampled.
    let unsampled = VALID.replace("-01", "-00");
    let ctx = TraceContext::from_headers(&h(&[("traceparent", &unsampled)]), random());
    assert!(ctx.traceparent().ends_with("-00"));
}

#[test]
fn starts_a_trace_when_absent_or_invalid() {
    for headers in [
        h(&[]),
        h(&[("traceparent", "garbage"), ("tracestate", "a=b")]),
        h(&[("traceparent", VALID), ("traceparent", VALID)]),
        h(&[("traceparent", &format!("{VALID}, {VALID}"))]),
    ] {
        let ctx = TraceContext::from_headers(&headers, random());
        assert!(!ctx.is_continued());
        assert_eq!(ctx.trace_id(), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(
            ctx.tracestate(),
            None,
            "tracestate dropped with an invalid parent"
        );
        assert_eq!(
            ctx.traceparent(),
            "00-0102030405060708090a0b0c0d0e0f10-1112131415161718-01"
        );
        assert!(TraceParent::parse(&ctx.traceparent()).is_ok());
    }
    // No randomness at all still yields a valid traceparent.
    let ctx = TraceContext::from_headers(&[], [0; TRACE_RANDOM_BYTES]);
    assert!(TraceParent::parse(&ctx.traceparent()).is_ok());
}

#[test]
fn tracestate_is_validated() {
    assert_eq!(
        TraceState::parse("a=1,,b=2 ,\t").unwrap().as_str(),
        "a=1,b=2"
    );
    assert_eq!(
        TraceState::parse("tenant@sys=v").unwrap().as_str(),
        "tenant@sys=v"
    );
    assert_eq!(
        TraceState::parse("1tenant@sys=v").unwrap().as_str(),
        "1tenant@sys=v"
    );
    for bad in [
        "A=1", "1a=1", "a", "a=1,a=2", "a=b=c", "a=\u{e9}", "a=\r\n", "@sys=v", "t@=v", "t@Sys=v",
        "", " , ",
    ] {
        assert_eq!(TraceState::parse(bad), None, "{bad:?}");
    }
    assert!(TraceState::parse(&format!("{}=1", "a".repeat(257))).is_none());
    assert!(TraceState::parse(&format!("a={}", "v".repeat(257))).is_none());
}

#[test]
fn tracestate_is_truncated_as_the_spec_says() {
    let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
    let state = TraceState::parse(&many.join(",")).unwrap();
    assert_eq!(state.as_str().split(',').count(), MAX_TRACESTATE_MEMBERS);
    assert!(state.as_str().starts_with("k0=v,k1=v"));
    // Over 512 characters: the long member goes first, then from the end.
    let long = format!("long={}", "x".repeat(200));
    let mid: Vec<String> = (0..5)
        .map(|i| format!("m{i}={}", "y".repeat(100)))
        .collect();
    let text = format!("a=1,{long},{}", mid.join(","));
    let state = TraceState::parse(&text).unwrap();
    assert!(state.as_str().len() <= MAX_TRACESTATE_LEN);
    assert!(!state.as_str().contains("long="));
    assert!(state.as_str().starts_with("a=1,m0="));
    assert!(!state.as_str().contains("m4="));
    // Far too many members: dropped whole.
    let absurd: Vec<String> = (0..200).map(|i| format!("k{i}=v")).collect();
    assert!(TraceState::parse(&absurd.join(",")).is_none());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn output_is_always_valid(tp in "\\PC{0,60}|[0-9a-f-]{55}", ts in "\\PC{0,80}", r in any::<[u8; 24]>()) {
            let ctx = TraceContext::from_headers(&h(&[("traceparent", &tp), ("tracestate", &ts)]), r);
            prop_assert!(TraceParent::parse(&ctx.traceparent()).is_ok());
            prop_assert_eq!(ctx.trace_id().len(), 32);
            if let Some(state) = ctx.tracestate() {
                prop_assert!(state.len() <= MAX_TRACESTATE_LEN);
                prop_assert!(state.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            }
        }
    }
}
