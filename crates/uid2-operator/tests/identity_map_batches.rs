//! Identity map batches are mapped in groups (first-level hashes of a group computed together,
//! then their salt buckets and opt-out blocks read, then each identity answered): every item of
//! a batch that spans several groups, with invalid and opted-out items between valid ones, gets
//! exactly the answer it gets when sent alone, at its own index.

mod harness;

use harness::{Operator, C999};
use serde_json::{json, Value};

/// 53 emails: more than three groups, with a remainder; every 7th invalid, every 11th the test
/// identity that is always opted out.
fn emails() -> Vec<String> {
    (0..53)
        .map(|i| match i {
            i if i % 11 == 5 => "optout@example.com".to_owned(),
            i if i % 7 == 3 => format!("not an email {i}"),
            i => format!("batch.{i}@example.com"),
        })
        .collect()
}

#[tokio::test]
async fn v3_batch_answers_match_single_item_answers() {
    let op = Operator::start().await;
    let emails = emails();
    let batch = op
        .v2_ok("/v3/identity/map", &C999, &json!({ "email": emails }).to_string())
        .await;
    let answers = batch["body"]["email"].as_array().expect("an email array").clone();
    assert_eq!(answers.len(), emails.len());
    let mut seen = (0, 0, 0);
    for (email, answer) in emails.iter().zip(&answers) {
        let alone = op
            .v2_ok("/v3/identity/map", &C999, &json!({ "email": [email] }).to_string())
            .await;
        assert_eq!(&alone["body"]["email"][0], answer, "{email}");
        match answer.get("e").and_then(Value::as_str) {
            Some("optout") => seen.1 += 1,
            Some(_) => seen.2 += 1,
            None => seen.0 += 1,
        }
    }
    assert_eq!(seen, (41, 5, 7), "(mapped, opted out, invalid)");
}

#[tokio::test]
async fn v2_batch_answers_match_single_item_answers() {
    let op = Operator::start().await;
    let emails = emails();
    let batch = op
        .v2_ok("/v2/identity/map", &C999, &json!({ "email": emails }).to_string())
        .await;
    let mapped = batch["body"]["mapped"].as_array().expect("mapped").clone();
    let unmapped = batch["body"]["unmapped"].as_array().expect("unmapped").clone();
    assert_eq!(mapped.len() + unmapped.len(), emails.len());
    // Mapped and unmapped each keep the request's order.
    let (mut m, mut u) = (mapped.iter(), unmapped.iter());
    for email in &emails {
        let alone = op
            .v2_ok("/v2/identity/map", &C999, &json!({ "email": [email] }).to_string())
            .await;
        let expected_mapped = alone["body"]["mapped"].as_array().expect("mapped");
        if let Some(expected) = expected_mapped.first() {
            assert_eq!(m.next(), Some(expected), "{email}");
        } else {
            let expected = &alone["body"]["unmapped"][0];
            assert_eq!(u.next(), Some(expected), "{email}");
        }
    }
    assert_eq!((m.next(), u.next()), (None, None));
}
