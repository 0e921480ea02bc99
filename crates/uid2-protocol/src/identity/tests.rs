//! Known-answer vectors from `tokens.md` §8.1–8.7 ([repo] and [run-op]).

use super::raw_uid::{self, BucketKey};
use super::*;
use crate::base64;

fn hash_b64(text: &str) -> String {
    base64::encode(&sha256(&[text.as_bytes()]))
}

#[test]
fn email_normalization_repo_vectors() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["TEst.TEST@Test.com "],
            "test.test@test.com",
            "dvECjPKZHya0/SIhSGwP0m8SgTv1vzLxPULUOsm880M=",
        ),
        (
            &[
                "test.test@gmail.com",
                " test.test@gmail.com",
                "  test.test@gmail.com  ",
                "TEstTEst@GMail.Com  ",
                "TEst.TEst+123@GMail.Com",
            ],
            "testtest@gmail.com",
            "LkLfFrut8Tc3h/fIvYDiBKSbaMiau/DtaLBPQYszdMw=",
        ),
        (
            &["test+test@test.com"],
            "test+test@test.com",
            "rQ4yzdOz4uG8N54326QyZD6/JwqrXn4lmy34cVCojB8=",
        ),
        (
            &["+test@test.com"],
            "+test@test.com",
            "weFizOVVWKlLfyorbBU8oxYDv4HJtTZCPMyZ4THzUQE=",
        ),
        (
            &["test+test@gmail.com"],
            "test@gmail.com",
            "h5JGBrQTGorO7q6IaFMfu5cSqqB6XTp1aybOD11spnQ=",
        ),
        (
            &[
                "testtest@test.com",
                " testtest@test.com",
                "testtest@test.com ",
                "  testtest@test.com  ",
            ],
            "testtest@test.com",
            "d1Lr/s4GLLX3SvQVMoQdIMfbQPMAGZYry+2V+0pZlQg=",
        ),
        (
            &["😊testtest@test.com"],
            "😊testtest@test.com",
            "fAFEUqApQ0V/M9mLj/IO54CgKgtQuARKsOMqtFklD4k=",
        ),
        (
            &["testtest@😊test.com"],
            "testtest@😊test.com",
            "tcng5pttf7Y2z4ylZTROvIMw1+IVrMpR4D1KeXSrdiM=",
        ),
        (
            &["testtest@test.com😊"],
            "testtest@test.com😊",
            "0qI21FPLkuez/8RswfmircHPYz9Dtf7/Nch1rSWEQf0=",
        ),
        (
            &["USER@example.com"],
            "user@example.com",
            "tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ=",
        ),
        (
            &["MyEmail@example.com", "MYEMAIL@example.com"],
            "myemail@example.com",
            "FsGNM28LJQ8OLZB0Us65ZYp07NrovJSGTCMSKnLMJ6U=",
        ),
        (
            &["My.Email@example.com"],
            "my.email@example.com",
            "4itTvG+HEnTzpiqzejyu1yFPwU1nYhWpaiQvz62hyB8=",
        ),
        (
            &["JANESAOIRSE@example.com", "JaneSaoirse@example.com"],
            "janesaoirse@example.com",
            "1mcOepIAfxtf94Xx/IHlOqbT170GvfXEc83HKGwoS20=",
        ),
        (
            &["jane.saoirse@example.com"],
            "jane.saoirse@example.com",
            "sZZDLHuYmiypHIN5mVfFFdpT5sE6vyC3j+qU8RfpC/g=",
        ),
        (
            &["JaneSaoirse+Work@example.com"],
            "janesaoirse+work@example.com",
            "KKruSBUjDNO069iMUVImVQZm6RrAGZKeOtrD9mwogYA=",
        ),
        (
            &["JaneSaoirse+UID2@example.com"],
            "janesaoirse+uid2@example.com",
            "bhQ2aMIGWT1ey4p7JyavdNlIQ4pe11/rrcv0u1jrxCc=",
        ),
        (
            &[
                "JANE.SAOIRSE@gmail.com",
                "Jane.Saoirse@gmail.com",
                "JaneSaoirse+Work@gmail.com",
                "JaneSaoirse+UID2@gmail.com",
                "janesaoirse@gmail.com",
            ],
            "janesaoirse@gmail.com",
            "ku4mBX7Z3qJTXWyLFB1INzkyR2WZGW4ANSJUiW21iI8=",
        ),
    ];
    for (inputs, normalized, hash) in cases {
        for input in *inputs {
            assert_eq!(email::normalize(input).as_deref(), Some(*normalized), "input {input:?}");
            let identity = Dii::Email(input).to_identity().expect("valid");
            assert_eq!(base64::encode(&identity.hash), *hash, "input {input:?}");
        }
    }
    // The docs' deliberately wrong example: hashing without normalizing.
    assert_eq!(
        hash_b64("JANESaoirse@gmail.com"),
        "VpLXEp5N1bj/V1WzjgZsC+FfuYdntAOywSVIO00FD/E="
    );
}

#[test]
fn email_normalization_run_op_vectors() {
    let cases = [
        (
            "te st@test.com",
            "test@test.com",
            "9mCrkS7BIdGx6Sigu0vGGxX1rUTV79xOHJKiXpm45Eo=",
        ),
        (
            "test@te st.com",
            "test@te st.com",
            "qna5Bl9I5acw7minJBaEL+VyWEoceNpZ4AUeUciCLQI=",
        ),
        (
            "test@test.com  x",
            "test@test.com  x",
            "AJjRRzp6xbeWvH3rQoJSVRnvk0Jiwq8a13Wqyy8qe40=",
        ),
        (
            " \tx@y.com",
            "\tx@y.com",
            "QhB8VTf4yU+WAPFpVg/p0gqGrADD5QJJGYwuGW6GaZ8=",
        ),
        (
            "jane.doe+home@gmail.com",
            "janedoe@gmail.com",
            "1hFzBkhe0OUK+rOshx6Y+BaZFR8wKBUn1j/18jNlbGk=",
        ),
        (
            "Jane.Doe@GoogleMail.com",
            "jane.doe@googlemail.com",
            "nCdk4a9jZDWkvPKphzOusOAn1ueIVQQzEBUOmdc9NEA=",
        ),
        (
            "a.b+c@GMAIL.COM",
            "ab@gmail.com",
            "hsoq0nMYaWtBz8ZQrPrZe7MhlMQ+EZ5GWhY1nqdMcQU=",
        ),
        (
            ".a.@gmail.com",
            "a@gmail.com",
            "dfRJm1kgDTjwV+ln4pdZCrLrqtCSg93LPmb/sfGp85U=",
        ),
        (
            "x@gmail.com.",
            "x@gmail.com.",
            "9BcAPgk6ZXBjTsXkPY10FxE6oUr0jwrBpvKu7IlNpxQ=",
        ),
        (
            "Äbc@test.com",
            "Äbc@test.com",
            "IK602w+4/ysXF4gYQF3CbDddRbtUmOcI+ON+7XOEn0A=",
        ),
        (
            "a+b+c@test.com",
            "a+b+c@test.com",
            "ohEQ4jq4Pk66tnDXjkS2/5dFkPpmTwHnC/i7CrIxd/0=",
        ),
        ("a@b", "a@b", "dQjYtQGOpkC4UmmGGhASA/DCaQBVUmjpMAJdrIRLDzU="),
        (
            "test@example.com",
            "test@example.com",
            "lz3+Rj7IV4X1+Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs=",
        ),
        (
            "validate@example.com",
            "validate@example.com",
            "ntI244ZRTXwAwpki6/M5cyBYW7h/Wq576lnN3l9+W/c=",
        ),
        (
            "optout@example.com",
            "optout@example.com",
            "DYsnJ8r5+cjRDHue98gIGDKvLIMuqAm/RRLODrjqK50=",
        ),
        (
            "refresh-optout@example.com",
            "refresh-optout@example.com",
            "NaNI8RU0bL1Jpp1jJLC5aJO/lchc6gGhgXQIAwJ7cV4=",
        ),
        (
            "foo@bar.com",
            "foo@bar.com",
            "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijs=",
        ),
    ];
    for (input, normalized, hash) in cases {
        assert_eq!(email::normalize(input).as_deref(), Some(normalized), "input {input:?}");
        assert_eq!(hash_b64(normalized), hash, "input {input:?}");
    }
}

#[test]
fn invalid_emails() {
    for input in [
        "",
        " @",
        "@",
        "a@",
        "@b",
        "@b.com",
        "+",
        " ",
        "+@gmail.com",
        ".+@gmail.com",
        "a@ba@z.com",
    ] {
        assert_eq!(email::normalize(input), None, "input {input:?}");
        assert!(Dii::Email(input).to_identity().is_none());
    }
}

#[test]
fn phone_vectors() {
    let cases = [
        ("+12345678901", "EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="),
        ("+00000000000", "313yQvZOTb0vjjEU7sTO/UWxGPzVppIbCyQEJEnfxLo="),
        ("+00000000001", "M5tETCkakEH/MReteWsk6HwlyuPtK83wqZlgL9diqnI="),
        ("+00000000002", "0VoxsIuk88qt7TnZaTC//C9Vur3pR1zBMIr1cJe7xjE="),
        ("+1234567890", "QizoLG/BckrIeAQvfQVWU6temD0YbmFoJqctQ4S2ivg="),
        ("+123456789012345", "G0uu2XlelSENCKUYhunTPl2gYYlAPCqCPJ2S4iKtVeg="),
    ];
    for (input, hash) in cases {
        let identity = Dii::Phone(input).to_identity().expect("valid phone");
        assert_eq!(identity.id_type, IdentityType::Phone);
        assert_eq!(base64::encode(&identity.hash), hash);
    }
    assert_eq!(
        hex_of(&Dii::Phone("+12345678901").to_identity().expect("valid").hash),
        "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee"
    );
    for valid in [
        "+1234567890",
        "+12345678901",
        "+123456789012",
        "+1234567890123",
        "+12345678901234",
        "+123456789012345",
    ] {
        assert!(phone::is_normalized(valid), "{valid}");
    }
    for invalid in [
        "",
        "12345678",
        "123456789",
        "1234567890",
        "+12345678",
        "+123456789",
        "+ 12345678",
        "+ 1234 5678",
        "+1234567890123456",
        "+1234567890A",
        "+1234567890 ",
        "+1234567890+",
        "+12345+67890",
        "555-555-5555",
        "(555) 555-5555",
        "+１２３４５６７８９０",
    ] {
        assert!(!phone::is_normalized(invalid), "{invalid:?}");
    }
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[test]
fn hash_input_forms() {
    let expected = hex::decode("0c7e6a405862e402eb76a70f8a26fc732d07c32931e9fae9ab1582911d2e8a3b").expect("hex");
    for input in [
        "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijs=",
        "0C7E6A405862E402EB76A70F8A26FC732D07C32931E9FAE9AB1582911D2E8A3B",
        "0c7e6a405862e402eb76a70f8a26fc732d07c32931e9fae9ab1582911d2e8a3b",
    ] {
        assert_eq!(parse_hash_input(input).as_deref(), Some(&expected[..]), "{input}");
    }
    assert_eq!(
        parse_hash_input("DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijsA").map(|h| h.len()),
        Some(33)
    );
    assert_eq!(
        parse_hash_input("DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uij==").map(|h| h.len()),
        Some(31)
    );
    for invalid in [
        "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijs",
        "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uij-=",
        "",
        "asdaksjdakfj",
        "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijsZ",
        "0c7e6a405862e402eb76a70f8a26fc732d07c32931e9fae9ab1582911d2e8a3z",
        "0c7e6a405862e402eb76a70f8a26fc732d07c32931e9fae9ab1582911d2e8a3b00",
        "ééééééééééééééééééééééééééééééé", // 62 bytes, 31 characters
    ] {
        if invalid == "DH5qQFhi5ALrdqcPiib8cy0Hwykx6frpqxWCkR0uijsZ" {
            // 44 characters of valid alphabet: accepted, like the reference (33 bytes).
            assert!(parse_hash_input(invalid).is_some());
            continue;
        }
        assert_eq!(parse_hash_input(invalid), None, "{invalid:?}");
    }
}

fn flh_of_email(email: &str, salt: &str) -> [u8; 32] {
    let identity = Dii::Email(email).to_identity().expect("valid");
    first_level_hash(&identity.hash, salt)
}

#[test]
fn first_level_hash_bucket_and_raw_uid_v2_v3() {
    let salt = "first-level-salt";
    let cases = [
        (
            flh_of_email("test@example.com", salt),
            "7d2775cbdb7204a0f70e9248f55da07ae76e1088707bbbb492b808101ef589e9",
            512629,
            4,
            "c48e39b98e3f2f06d6c84539dd0b3ce9fa89e1bddfc7624ad1c02ea0e7c9806e",
            IdentityType::Email,
        ),
        (
            flh_of_email("test1@uid2.com", salt),
            "6679932aa080d70106c4688e69568fdddf3bf15e466e0698f9a3f40233a856a8",
            419731,
            1,
            "d881cca9864035b1a0a7f9f1b30c0aa5b64030469d761bc3e406004be0f86ba0",
            IdentityType::Email,
        ),
        (
            first_level_hash(&Dii::Phone("+12345678901").to_identity().expect("valid").hash, salt),
            "47756feca153a6f596e52d797b0870dafd5fb82fcc60b204ba9e7d5c21bc5afc",
            292703,
            3,
            "5fe2fedbcb9ee54ba468bdb20db6200f42d4369ad04890f629e1ee5263d60bb8",
            IdentityType::Phone,
        ),
    ];
    for (flh, flh_hex, full_index, mod5, v2_hex, id_type) in cases {
        assert_eq!(hex_of(&flh), flh_hex);
        assert_eq!(bucket_index(&flh, FULL_BUCKET_COUNT), full_index);
        assert_eq!(bucket_index(&flh, 5), mod5);
        let v2 = raw_uid::v2(&flh, "salt123");
        assert_eq!(hex_of(&v2), v2_hex);
        let uid2 = raw_uid::v3(IdentityScope::Uid2, id_type, &v2);
        let euid = raw_uid::v3(IdentityScope::Euid, id_type, &v2);
        let prefix = if id_type == IdentityType::Phone { "04" } else { "00" };
        assert_eq!(hex_of(&uid2), format!("{prefix}{v2_hex}"));
        assert_eq!(euid[0], uid2[0] | 0x10);
    }
    assert_eq!(
        base64::encode(&flh_of_email("test@example.com", salt)),
        "fSd1y9tyBKD3DpJI9V2geuduEIhwe7u0krgIEB71iek="
    );
    let v2 = raw_uid::v2(&flh_of_email("test@example.com", salt), "salt123");
    assert_eq!(base64::encode(&v2), "xI45uY4/LwbWyEU53Qs86fqJ4b3fx2JK0cAuoOfJgG4=");
    assert_eq!(
        base64::encode(&raw_uid::v3(IdentityScope::Euid, IdentityType::Email, &v2)),
        "EMSOObmOPy8G1shFOd0LPOn6ieG938diStHALqDnyYBu"
    );
    let phone_v2 = raw_uid::v2(
        &first_level_hash(&Dii::Phone("+12345678901").to_identity().expect("valid").hash, salt),
        "salt123",
    );
    assert_eq!(
        base64::encode(&raw_uid::v3(IdentityScope::Uid2, IdentityType::Phone, &phone_v2)),
        "BF/i/tvLnuVLpGi9sg22IA9C1Daa0EiQ9inh7lJj1gu4"
    );
}

#[test]
fn reference_test_salts_first_level_hash() {
    let salt = "fOGY/aRE44peL23i+cE9MkJrzmEeNZZziNZBfq7qqk8=";
    let test = flh_of_email("test@example.com", salt);
    assert_eq!(
        hex_of(&test),
        "44dcf288c332d74ea1cbc32904eb0705ef99664411f086d4006fc80b63ab36be"
    );
    assert_eq!(bucket_index(&test, 5), 0);
    assert_eq!(bucket_index(&test, FULL_BUCKET_COUNT), 282050);
    let user = flh_of_email("user@example.com", salt);
    assert_eq!(
        hex_of(&user),
        "b0db9cbaea9149ebf1100960e2676113e54577e77f5ce6fa37f918039412ff31"
    );
    assert_eq!(bucket_index(&user, 5), 2);
    assert_eq!(bucket_index(&user, FULL_BUCKET_COUNT), 724412);
}

#[test]
fn bucket_index_vectors() {
    let cases = [
        ([0x00, 0x00, 0x00], 0, 0),
        ([0xff, 0xff, 0xff], 1048575, 575),
        ([0x12, 0x34, 0x56], 74566, 566),
        ([0xab, 0xcd, 0xef], 703711, 711),
        ([0x01, 0x02, 0xf3], 4131, 131),
        ([0x80, 0x00, 0x0f], 524303, 303),
    ];
    for (head, full, mod1000) in cases {
        let mut flh = [0u8; 32];
        flh[..3].copy_from_slice(&head);
        assert_eq!(bucket_index(&flh, FULL_BUCKET_COUNT), full);
        assert_eq!(bucket_index(&flh, 1000), mod1000);
    }
    assert_eq!(bucket_index(&[0xff; 32], 0), 0);
}

const V4_KEY: BucketKey<'static> = BucketKey {
    id: 1_000_000,
    key: "key12345key12345key12345key12345",
    salt: "salt1234salt1234salt1234salt1234",
};

#[test]
fn raw_uid_v4_vectors() {
    use IdentityEnvironment::{Integ, Prod, Test};
    use IdentityScope::{Euid, Uid2};
    let email = flh_of_email("test@example.com", "first-level-salt");
    let email1 = flh_of_email("test1@uid2.com", "first-level-salt");
    let phone = first_level_hash(
        &Dii::Phone("+12345678901").to_identity().expect("valid").hash,
        "first-level-salt",
    );
    let cases = [
        (
            email,
            Uid2,
            IdentityType::Email,
            Test,
            "IA9CQOsJBgvRuTVgft5z6baMDjWqXJntO9I0z/YkdF6s",
        ),
        (
            email,
            Uid2,
            IdentityType::Email,
            Integ,
            "YA9CQNO8peCWvoIvGFRn5Rzo/vpp9J6ohmSaPmJEB9Pj",
        ),
        (
            email,
            Uid2,
            IdentityType::Email,
            Prod,
            "oA9CQGbt0CqGTFoNUYvRGolN6l5mq6FMeNcTPKE2GPv0",
        ),
        (
            email,
            Euid,
            IdentityType::Email,
            Test,
            "MA9CQP4Rhlb654LPhcKqYsWvzfz3aL4GXFq6zUUek2hw",
        ),
        (
            email,
            Euid,
            IdentityType::Email,
            Integ,
            "cA9CQKW5kZUKjV4sYL6igX4fTSn6EABbjvv13ucD/guW",
        ),
        (
            email,
            Euid,
            IdentityType::Email,
            Prod,
            "sA9CQMKcFN+h3FUq0EyXtkej5o1APieRq3934+QAFJ//",
        ),
        (
            email1,
            Uid2,
            IdentityType::Email,
            Test,
            "IA9CQDJgT1I1xRL/Dxyb5wLzfLq1x5HXlI2zbkBT/XlA",
        ),
        (
            email1,
            Uid2,
            IdentityType::Email,
            Prod,
            "oA9CQOCJOnDyZko1sL/I6WFEp56qEaFPZjKJ+c8rOIJ4",
        ),
        (
            phone,
            Uid2,
            IdentityType::Phone,
            Test,
            "JA9CQCJX/JZHopZ/Xp3FlRwo937+JyIgQskGWAehPIcH",
        ),
        (
            phone,
            Uid2,
            IdentityType::Phone,
            Integ,
            "ZA9CQLajVqynPMmWMFx8+welsaHhZfqF5kzdoBEvvTSA",
        ),
        (
            phone,
            Uid2,
            IdentityType::Phone,
            Prod,
            "pA9CQLIqS0uEE2p7rSpwoCtMZvHWNVIrOIUzocJFKUhD",
        ),
        (
            phone,
            Euid,
            IdentityType::Phone,
            Prod,
            "tA9CQNU9jrYgWOnWyhPanZBAmQN2KlnZxeWz8XJ4RS4l",
        ),
    ];
    for (flh, scope, id_type, env, expected) in cases {
        let uid = raw_uid::v4(scope, id_type, env, &flh, V4_KEY).expect("32-char key");
        assert_eq!(base64::encode(&uid), expected, "{scope:?} {id_type:?} {env:?}");
    }
    let prod = raw_uid::v4(Uid2, IdentityType::Email, Prod, &email, V4_KEY).expect("32-char key");
    assert_eq!(
        hex_of(&prod),
        "a00f424066edd02a864c5a0d518bd11a894dea5e66aba14c78d7133ca13618fbf4"
    );
}

#[test]
fn raw_uid_v4_intermediates() {
    let flh = flh_of_email("test@example.com", "salt1234salt1234salt1234salt1234");
    assert_eq!(
        hex_of(&flh),
        "7d176af67377e44234963ba46bc3527a85d1ec7ed7e2e230f344982c4b44b060"
    );
    let uid = raw_uid::v4(
        IdentityScope::Uid2,
        IdentityType::Email,
        IdentityEnvironment::Test,
        &flh,
        V4_KEY,
    )
    .expect("32-char key");
    assert_eq!(hex_of(&uid[4..16]), "63b43fb268d166469febb818");
    assert_eq!(hex_of(&uid[16..32]), "91969ba92df994bb14506f0beb0dccc8");
    assert_eq!(uid[32], 0x36);
    assert_eq!(base64::encode(&uid), "IA9CQGO0P7Jo0WZGn+u4GJGWm6kt+ZS7FFBvC+sNzMg2");
}

#[test]
fn raw_uid_v4_rejects_bad_key_lengths() {
    let key = BucketKey {
        id: 1,
        key: "short",
        salt: "s",
    };
    assert!(raw_uid::v4(
        IdentityScope::Uid2,
        IdentityType::Email,
        IdentityEnvironment::Test,
        &[0; 32],
        key
    )
    .is_err());
}

#[test]
fn v4_metadata_table() {
    use IdentityEnvironment::{Integ, Prod, Test};
    let table = [
        (IdentityScope::Uid2, IdentityType::Email, [0x20, 0x60, 0xA0]),
        (IdentityScope::Uid2, IdentityType::Phone, [0x24, 0x64, 0xA4]),
        (IdentityScope::Euid, IdentityType::Email, [0x30, 0x70, 0xB0]),
        (IdentityScope::Euid, IdentityType::Phone, [0x34, 0x74, 0xB4]),
    ];
    for (scope, id_type, expected) in table {
        for (env, byte) in [Test, Integ, Prod].into_iter().zip(expected) {
            assert_eq!(raw_uid::v4_metadata(scope, id_type, env), byte);
        }
    }
}

#[test]
fn token_prefix_bytes() {
    assert_eq!(token_prefix_byte(IdentityScope::Uid2, IdentityType::Email), 0x03);
    assert_eq!(token_prefix_byte(IdentityScope::Uid2, IdentityType::Phone), 0x07);
    assert_eq!(token_prefix_byte(IdentityScope::Euid, IdentityType::Email), 0x13);
    assert_eq!(token_prefix_byte(IdentityScope::Euid, IdentityType::Phone), 0x17);
}

/// `tokens.md` §8.8: the SDKs' raw UID samples; each v3 value is its v2 value behind the
/// scope/type byte, which decoders read back.
#[test]
fn sdk_raw_uid_samples() {
    let cases = [
        (
            "Q4bGug8t1xjsutKLCNjnb5fTlXSvIQukmahYDJeLBtk=",
            "BEOGxroPLdcY7LrSiwjY52+X05V0ryELpJmoWAyXiwbZ",
            IdentityScope::Uid2,
            IdentityType::Phone,
        ),
        (
            "oKg0ZY9ieD/CGMEjAA0kcq+8aUbLMBG0MgCT3kWUnJs=",
            "AKCoNGWPYng/whjBIwANJHKvvGlGyzARtDIAk95FlJyb",
            IdentityScope::Uid2,
            IdentityType::Email,
        ),
        (
            "oKg0ZY9ieD/CGMEjAA0kcq+8aUbLMBG0MgCT3kWUnJs=",
            "EKCoNGWPYng/whjBIwANJHKvvGlGyzARtDIAk95FlJyb",
            IdentityScope::Euid,
            IdentityType::Email,
        ),
    ];
    for (v2_text, v3_text, scope, id_type) in cases {
        let v2: [u8; 32] = base64::decode(v2_text).expect("b64").try_into().expect("32 bytes");
        assert_eq!(base64::encode(&raw_uid::v3(scope, id_type, &v2)), v3_text);
        let v3 = base64::decode(v3_text).expect("b64");
        assert_eq!(IdentityScope::from_bit(v3[0] >> 4), scope);
        assert_eq!(IdentityType::from_prefix_byte(v3[0]), Some(id_type));
    }
}
