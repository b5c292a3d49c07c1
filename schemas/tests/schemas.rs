//! The `.avsc` files themselves: each parses, documents every record, enum and field, defines
//! the shared types (Money, Address, ...) identically, and is covered by exactly one Rust event type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apache_avro::schema::Schema;
use orderflow_schemas::{AnyEvent, TOPICS, event_schemas};
use serde_json::Value as Json;

fn avro_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("avro")
}

/// Every `.avsc` under `avro/`, as (path relative to the crate root, text).
fn avsc_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read avro dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "avsc") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&avro_dir(), &mut paths);
    paths.sort();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("read .avsc");
            (rel, text)
        })
        .collect()
}

#[test]
fn there_are_schema_files() {
    assert!(
        avsc_files().len() >= 19,
        "expected the 19 event schemas under {}",
        avro_dir().display()
    );
}

#[test]
fn every_avsc_parses_as_a_record_named_after_its_file() {
    for (path, text) in avsc_files() {
        let schema = Schema::parse_str(&text)
            .unwrap_or_else(|e| panic!("{path} does not parse as Avro: {e}"));
        let Schema::Record(record) = &schema else {
            panic!("{path}: the top-level schema must be a record")
        };
        // avro/<aggregate>/<Name>.avsc  <=>  orderflow.<aggregate>.<Name>
        let parts: Vec<&str> = path.trim_end_matches(".avsc").split('/').collect();
        assert_eq!(
            parts.len(),
            3,
            "{path}: expected avro/<aggregate>/<Event>.avsc"
        );
        let expected = format!("orderflow.{}.{}", parts[1], parts[2]);
        assert_eq!(record.name.fullname(None), expected, "{path}: record name");
    }
}

/// Visits every named type definition and every record field in a schema's JSON.
fn visit_definitions(json: &Json, enclosing_ns: &str, f: &mut dyn FnMut(&str, &Json, &str)) {
    match json {
        Json::Array(items) => items
            .iter()
            .for_each(|i| visit_definitions(i, enclosing_ns, f)),
        Json::Object(obj) => {
            let kind = obj.get("type").and_then(Json::as_str);
            let mut ns = enclosing_ns.to_owned();
            if let (Some("record" | "enum" | "fixed"), Some(name)) =
                (kind, obj.get("name").and_then(Json::as_str))
            {
                if let Some(n) = obj.get("namespace").and_then(Json::as_str) {
                    ns = n.to_owned();
                }
                let fullname = if name.contains('.') || ns.is_empty() {
                    name.to_owned()
                } else {
                    format!("{ns}.{name}")
                };
                f(&fullname, json, &ns);
            }
            if let Some(t) = obj.get("type")
                && !t.is_string()
            {
                visit_definitions(t, &ns, f);
            }
            if let Some(Json::Array(fields)) = obj.get("fields") {
                for field in fields {
                    if let Some(t) = field.get("type") {
                        visit_definitions(t, &ns, f);
                    }
                }
            }
            if let Some(items) = obj.get("items") {
                visit_definitions(items, &ns, f);
            }
        }
        _ => {}
    }
}

fn non_empty_doc(json: &Json) -> bool {
    json.get("doc")
        .and_then(Json::as_str)
        .is_some_and(|d| !d.trim().is_empty())
}

#[test]
fn every_record_enum_and_field_has_a_doc() {
    let mut missing = Vec::new();
    let mut fields_seen = 0;
    for (path, text) in avsc_files() {
        let json: Json = serde_json::from_str(&text).expect("valid JSON");
        visit_definitions(&json, "", &mut |fullname, def, _| {
            if !non_empty_doc(def) {
                missing.push(format!("{path}: type {fullname}"));
            }
            if let Some(Json::Array(fields)) = def.get("fields") {
                for field in fields {
                    fields_seen += 1;
                    if !non_empty_doc(field) {
                        missing.push(format!("{path}: field {fullname}.{}", field["name"]));
                    }
                }
            }
        });
    }
    assert!(
        fields_seen > 100,
        "the walk found only {fields_seen} fields"
    );
    assert!(
        missing.is_empty(),
        "missing or empty \"doc\":\n{}",
        missing.join("\n")
    );
}

/// A named type's definition with every nested named definition replaced by its full name:
/// what must be equal between two copies (the nested ones are compared on their own, and a
/// schema may define a nested type inline or refer to an earlier definition by name).
fn shallow(def: &Json, enclosing_ns: &str) -> Json {
    let Json::Object(obj) = def else {
        return def.clone();
    };
    let ns = obj
        .get("namespace")
        .and_then(Json::as_str)
        .unwrap_or(enclosing_ns);
    let mut out = obj.clone();
    if let Some(Json::Array(fields)) = obj.get("fields") {
        let fields = fields
            .iter()
            .map(|field| {
                let mut field = field.clone();
                field["type"] = type_ref(&field["type"], ns);
                field
            })
            .collect();
        out.insert("fields".into(), Json::Array(fields));
    }
    Json::Object(out)
}

/// A type in a field or array position, with named definitions and short names turned into
/// full names.
fn type_ref(ty: &Json, ns: &str) -> Json {
    let qualify = |name: &str, ns: &str| {
        if name.contains('.') || is_primitive(name) || ns.is_empty() {
            name.to_owned()
        } else {
            format!("{ns}.{name}")
        }
    };
    match ty {
        Json::String(name) => Json::String(qualify(name, ns)),
        Json::Array(branches) => Json::Array(branches.iter().map(|b| type_ref(b, ns)).collect()),
        Json::Object(obj) => match obj.get("type").and_then(Json::as_str) {
            Some("record" | "enum" | "fixed") => {
                let inner_ns = obj.get("namespace").and_then(Json::as_str).unwrap_or(ns);
                Json::String(qualify(obj["name"].as_str().unwrap(), inner_ns))
            }
            Some("array") => {
                let mut obj = obj.clone();
                let items = type_ref(&obj["items"], ns);
                obj.insert("items".into(), items);
                Json::Object(obj)
            }
            _ => ty.clone(),
        },
        other => other.clone(),
    }
}

fn is_primitive(name: &str) -> bool {
    matches!(
        name,
        "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string"
    )
}

#[test]
fn shared_named_types_are_defined_identically_everywhere() {
    // Each .avsc is self-contained, so Money, Address, OrderLine... are repeated inline; a
    // difference between two copies would make two incompatible types with one name.
    let mut definitions: BTreeMap<String, (String, Json)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut money_copies = 0;
    for (path, text) in avsc_files() {
        let json: Json = serde_json::from_str(&text).expect("valid JSON");
        visit_definitions(&json, "", &mut |fullname, def, ns| {
            if fullname == "orderflow.common.Money" {
                money_copies += 1;
            }
            let def = &shallow(def, ns);
            match definitions.get(fullname) {
                None => {
                    definitions.insert(fullname.to_owned(), (path.clone(), def.clone()));
                }
                Some((first, existing)) if existing != def => {
                    mismatches.push(format!("{fullname}: {first} and {path} differ"));
                }
                Some(_) => {}
            }
        });
    }
    assert!(
        money_copies == 11,
        "expected Money in the 11 schemas that carry an amount, saw {money_copies}"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn money_timestamps_and_ids_use_the_agreed_representations() {
    let money = serde_json::json!([
        {"name": "amount_minor", "type": "long", "doc": ""},
        {"name": "currency", "type": "string", "doc": ""}
    ]);
    for (path, text) in avsc_files() {
        let json: Json = serde_json::from_str(&text).unwrap();
        visit_definitions(&json, "", &mut |fullname, def, _| {
            if fullname == "orderflow.common.Money" {
                let shape: Vec<(Json, Json)> = def["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| (f["name"].clone(), f["type"].clone()))
                    .collect();
                let expected: Vec<(Json, Json)> = money
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| (f["name"].clone(), f["type"].clone()))
                    .collect();
                assert_eq!(shape, expected, "{path}: Money");
            }
            for field in def["fields"].as_array().into_iter().flatten() {
                let name = field["name"].as_str().unwrap();
                let ty = &field["type"];
                // The non-null branch of an optional field.
                let ty = match ty.as_array() {
                    Some(branches) => branches.iter().find(|b| *b != "null").unwrap(),
                    None => ty,
                };
                if name.ends_with("_at") {
                    assert_eq!(
                        ty,
                        &serde_json::json!({"type": "long", "logicalType": "timestamp-millis"}),
                        "{path}: {fullname}.{name} must be timestamp-millis"
                    );
                }
                if name.ends_with("_id") {
                    assert_eq!(
                        ty,
                        &serde_json::json!({"type": "string", "logicalType": "uuid"}),
                        "{path}: {fullname}.{name} must be a UUID string"
                    );
                }
            }
        });
        let first_two: Vec<&str> = json["fields"].as_array().unwrap()[..2]
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            first_two,
            ["event_id", "occurred_at"],
            "{path}: envelope fields"
        );
    }
}

#[test]
fn every_avsc_file_is_covered_by_exactly_one_rust_event_type() {
    let files: Vec<String> = avsc_files().into_iter().map(|(p, _)| p).collect();
    let mut covered: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in event_schemas() {
        covered.entry(entry.file).or_default().push(entry.name);
    }
    for file in &files {
        match covered.get(file.as_str()).map(Vec::len) {
            Some(1) => {}
            None => panic!("{file} has no Rust event type (add it to its aggregate module)"),
            Some(n) => panic!(
                "{file} is claimed by {n} Rust event types: {:?}",
                covered[file.as_str()]
            ),
        }
    }
    for file in covered.keys() {
        assert!(
            files.iter().any(|f| f == file),
            "a Rust event type points at {file}, which does not exist"
        );
    }
    assert_eq!(covered.len(), files.len());
    // And each of them has a sample, so the round-trip tests reach it.
    let sampled: Vec<&str> = orderflow_schemas::samples::all()
        .iter()
        .map(AnyEvent::name)
        .collect();
    for entry in event_schemas() {
        assert_eq!(
            sampled.iter().filter(|n| **n == entry.name).count(),
            1,
            "samples::all() must hold exactly one {}",
            entry.name
        );
    }
}

#[test]
fn catalogue_entries_agree_with_their_schemas() {
    let mut names = Vec::new();
    for entry in event_schemas() {
        let on_disk =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(entry.file))
                .expect("catalogue file exists");
        assert_eq!(
            entry.json, on_disk,
            "{}: embedded text is stale",
            entry.file
        );
        let Schema::Record(record) = entry.schema() else {
            panic!("{} is not a record", entry.name)
        };
        assert_eq!(record.name.fullname(None), entry.name);
        let aggregate = entry.name.split('.').nth(1).unwrap();
        assert_eq!(entry.topic, format!("{aggregate}.events"));
        assert!(
            TOPICS.contains(&entry.topic),
            "{} is not in TOPICS",
            entry.topic
        );
        assert_eq!(entry.subject(), format!("{}-{}", entry.topic, entry.name));
        assert!(AnyEvent::knows(entry.name));
        names.push(entry.name);
    }
    assert_eq!(names.len(), 24);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 24, "duplicate names in the catalogue");
    assert_eq!(
        orderflow_schemas::event_schema("orderflow.orders.OrderPlaced").map(|e| e.topic),
        Some("orders.events")
    );
    assert!(orderflow_schemas::event_schema("orderflow.orders.Nope").is_none());
}
