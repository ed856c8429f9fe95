//! The data model's API: constructors, accessors, maps, and serde conversions.

use std::collections::BTreeMap;

use asyncaproto::{from_value, json, to_value, value, Encoding, Map, Value};
use serde::{Deserialize, Serialize};

#[test]
fn conversions_build_the_expected_variants() {
    assert_eq!(Value::from(()), Value::Null);
    assert_eq!(Value::from(None::<i32>), Value::Null);
    assert_eq!(Value::from(Some("x")), Value::Str("x".into()));
    assert_eq!(Value::from('c'), Value::Str("c".into()));
    assert_eq!(Value::from(String::from("s")), Value::Str("s".into()));
    assert_eq!(Value::from(std::borrow::Cow::from("c")), Value::from("c"));
    assert_eq!(Value::from(-5i8), Value::Int(-5));
    assert_eq!(Value::from(u32::MAX), Value::Int(4_294_967_295));
    assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
    assert_eq!(Value::from(2.5f32), Value::Float(2.5));
    assert_eq!(Value::from(false), Value::Bool(false));
    // Vec<u8> is an array of integers; binary is asked for by name.
    assert_eq!(
        Value::from(vec![1u8, 2]),
        Value::Array(vec![Value::Int(1), Value::Int(2)])
    );
    assert_eq!(Value::bin([1u8, 2]), Value::Bin(vec![1, 2]));
    assert_eq!(Value::from(&[1, 2][..]), Value::from(vec![1, 2]));
    let collected: Value = (1..=3).collect();
    assert_eq!(collected, Value::from(vec![1, 2, 3]));
    let map: Value = [("a", 1)].into_iter().collect();
    assert_eq!(map, Value::Map(Map::from_iter([("a", 1)])));
}

#[test]
fn accessors() {
    let value = Value::from(vec![Value::from(1), Value::from("s"), Value::Null]);
    assert!(value.is_array());
    assert_eq!(value.as_array().map(Vec::len), Some(3));
    assert_eq!(value[0].as_i64(), Some(1));
    assert_eq!(value[1].as_str(), Some("s"));
    assert!(value[2].is_null());
    assert!(value[3].is_null());
    assert_eq!(Value::from(true).as_bool(), Some(true));
    assert_eq!(Value::from(1).as_bool(), None);
    assert!(Value::from(1.5).is_number() && !Value::from(1.5).is_integer());
    assert!(Value::from(u64::MAX).is_integer());
    assert_eq!(Value::bin([9u8]).as_bin(), Some(&[9u8][..]));
    assert!(Value::from("s").is_str() && Value::bin([]).is_bin());
    assert!(Value::Map(Map::new()).is_map() && Value::from(true).is_bool());

    let mut value = Value::Map(Map::from_iter([("list", vec![1])]));
    if let Some(list) = value.get_mut("list").and_then(Value::as_array_mut) {
        list.push(Value::from(2));
    }
    assert_eq!(value["list"], Value::from(vec![1, 2]));
    value
        .as_map_mut()
        .expect("map")
        .insert("extra", Value::Null);
    assert_eq!(value.as_map().map(Map::len), Some(2));
    let taken = value.take();
    assert!(value.is_null());
    assert!(taken.is_map());
}

#[test]
fn map_api() {
    let mut map = Map::with_capacity(4);
    assert!(map.is_empty());
    map.insert("a", 1);
    map.insert(String::from("b"), "two");
    map.extend([("c", Value::from(3.0))]);
    assert_eq!(map.len(), 3);
    assert!(map.contains_key("b") && !map.contains_key("z"));
    assert_eq!(map.get("b"), Some(&Value::from("two")));
    assert_eq!(
        map.get_key_value("a"),
        Some((&"a".to_owned(), &Value::from(1)))
    );
    assert!(map["z"].is_null());
    assert_eq!(map.values().count(), 3);
    assert_eq!(
        map.iter().map(|(k, _)| k.as_str()).collect::<String>(),
        "abc"
    );
    let mut keys = Vec::new();
    for (k, _) in &map {
        keys.push(k.clone());
    }
    assert_eq!(keys, ["a", "b", "c"]);
    map.clear();
    assert!(map.is_empty());
}

#[test]
fn display_of_map_and_value() {
    let map = Map::from_iter([("k", Value::from(vec![1.0, 1e-7]))]);
    assert_eq!(map.to_string(), r#"{"k": [1.0, 1e-07]}"#);
    assert_eq!(Value::from(map).to_string(), r#"{"k": [1.0, 1e-07]}"#);
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Point,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i8, i8),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Everything {
    b: bool,
    i: i32,
    big: u64,
    neg: i64,
    f: f64,
    s: String,
    c: char,
    opt_none: Option<u8>,
    opt_some: Option<String>,
    list: Vec<u16>,
    tuple: (u8, String),
    nested: BTreeMap<String, Vec<bool>>,
    shapes: Vec<Shape>,
    unit: (),
    newtype: Meters,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meters(f32);

fn everything() -> Everything {
    Everything {
        b: true,
        i: -7,
        big: u64::MAX,
        neg: i64::MIN,
        f: 0.5,
        s: "é".into(),
        c: 'x',
        opt_none: None,
        opt_some: Some("y".into()),
        list: vec![1, 2],
        tuple: (3, "t".into()),
        nested: BTreeMap::from([("k".to_owned(), vec![true, false])]),
        shapes: vec![
            Shape::Point,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(-1, 1),
        ],
        unit: (),
        newtype: Meters(2.5),
    }
}

#[test]
fn to_value_builds_the_json_shape() {
    let value = to_value(&everything()).expect("serializable");
    assert_eq!(
        value.to_string(),
        concat!(
            r#"{"b": true, "i": -7, "big": 18446744073709551615, "neg": -9223372036854775808, "#,
            r#""f": 0.5, "s": "\u00e9", "c": "x", "opt_none": null, "opt_some": "y", "list": [1, 2], "#,
            r#""tuple": [3, "t"], "nested": {"k": [true, false]}, "#,
            r#""shapes": ["Point", {"Circle": 1.5}, {"Rect": {"w": 2, "h": 3}}, {"Pair": [-1, 1]}], "#,
            r#""unit": null, "newtype": 2.5}"#
        )
    );
    // The same as serde_json's own rendering, modulo separators.
    let reference = serde_json::to_string(&everything()).expect("serializable");
    let ours = json::decode(reference.as_bytes()).expect("valid JSON");
    assert_eq!(ours, value);
}

#[test]
fn from_value_round_trips_owned_and_borrowed() {
    let value = to_value(&everything()).expect("serializable");
    let borrowed = Everything::deserialize(&value).expect("borrowed");
    assert_eq!(borrowed, everything());
    let owned: Everything = from_value(value.clone()).expect("owned");
    assert_eq!(owned, everything());
    // Through both wire encodings too.
    for encoding in [Encoding::Json, Encoding::ZiProto] {
        let mut wire = Vec::new();
        encoding.encode_value(&value, &mut wire).expect("encodable");
        let map = encoding.decode(&wire).expect("decodes");
        assert_eq!(Everything::deserialize(&map), Ok(everything()));
        assert_eq!(from_value::<Everything>(Value::Map(map)), Ok(everything()));
    }
}

#[test]
fn borrowed_strings_are_not_copied() {
    #[derive(Deserialize)]
    struct View<'a> {
        name: &'a str,
        #[serde(with = "serde_bytes_shim")]
        raw: &'a [u8],
    }
    mod serde_bytes_shim {
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<&'de [u8], D::Error> {
            <&[u8]>::deserialize(d)
        }
        use serde::Deserialize;
    }
    let map = Map::from_iter([
        ("name", Value::from("ada")),
        ("raw", Value::bin(*b"\x01\x02")),
    ]);
    let view = View::deserialize(&map).expect("borrowed view");
    assert_eq!(view.name, "ada");
    assert_eq!(view.raw, b"\x01\x02");
}

#[test]
fn a_map_reads_as_an_optional_or_newtype_struct() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Inner {
        a: i32,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct Wrapper(Inner);
    let map = Map::from_iter([("a", 1)]);
    assert_eq!(Option::<Inner>::deserialize(&map), Ok(Some(Inner { a: 1 })));
    assert_eq!(Wrapper::deserialize(&map), Ok(Wrapper(Inner { a: 1 })));
    assert_eq!(
        from_value::<Option<Inner>>(Value::Map(map.clone())),
        Ok(Some(Inner { a: 1 }))
    );
    assert_eq!(from_value::<Option<Inner>>(Value::Null), Ok(None));
    let owned: Wrapper = Wrapper::deserialize(map).expect("owned map");
    assert_eq!(owned, Wrapper(Inner { a: 1 }));
}

#[test]
fn binary_round_trips_through_serde() {
    struct Bytes(Vec<u8>);
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    let value = to_value(&Bytes(vec![0, 255])).expect("serializable");
    assert_eq!(value, Value::bin([0u8, 255]));
    // Value's own Serialize writes bytes; serde_json renders them as an array.
    assert_eq!(
        serde_json::to_string(&value).expect("serializable"),
        "[0,255]"
    );
    let borrowed = Vec::<u8>::deserialize(&value).expect("borrowed bytes as a sequence");
    assert_eq!(borrowed, [0, 255]);
    let back: Vec<u8> = from_value(value).expect("bytes as a sequence");
    assert_eq!(back, [0, 255]);
}

#[test]
fn conversion_errors_are_reported() {
    assert!(to_value(&f64::NAN).is_err());
    assert!(to_value(&u128::MAX).is_err());
    assert_eq!(to_value(&(1u128 << 63)), Ok(Value::UInt(1 << 63)));
    let mut bad_keys = BTreeMap::new();
    bad_keys.insert(vec![1], 1);
    assert!(to_value(&bad_keys).is_err());
    // Integer keys become strings, as serde_json does.
    let int_keys = BTreeMap::from([(1, "a"), (2, "b")]);
    assert_eq!(
        to_value(&int_keys).map(|v| v.to_string()),
        Ok(r#"{"1": "a", "2": "b"}"#.to_owned())
    );

    let err = from_value::<u8>(Value::from(300)).expect_err("out of range");
    assert!(err.to_string().contains("300"), "{err}");
    let err: value::Error = from_value::<String>(Value::from(1)).expect_err("wrong type");
    assert!(err.to_string().contains("string"), "{err}");
    assert!(from_value::<Shape>(Value::from("Hexagon")).is_err());
    assert!(from_value::<Shape>(Value::from(1)).is_err());
    assert!(from_value::<(u8, u8)>(Value::from(vec![1, 2, 3])).is_err());
}

#[test]
fn value_deserializes_from_other_formats_under_the_same_rules() {
    let value: Value = serde_json::from_str(r#"{"a": [1, 2.5, null, "s"]}"#).expect("valid");
    assert_eq!(value["a"][1], 2.5);
    let dup = serde_json::from_str::<Value>(r#"{"a": 1, "a": 2}"#);
    assert!(dup.is_err_and(|e| e.to_string().contains("duplicate key")));
    let map: Map = serde_json::from_str(r#"{"k": true}"#).expect("a map");
    assert_eq!(map["k"], true);
    assert!(serde_json::from_str::<Map>("[1]").is_err());
    // Serialize then Deserialize through serde_json gives the same tree.
    let original = json::decode(br#"{"x": [1, -2, 3.5, {"y": null}], "z": 18446744073709551615}"#)
        .expect("valid");
    let text = serde_json::to_string(&original).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("valid"),
        original
    );
}
