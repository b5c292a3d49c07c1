//! The Kibana saved objects (`kibana/orderflow.ndjson`: the data view, one visualization per report
//! question, the saved search of orders, the dashboard), checked without Kibana, which cannot run
//! here:
//!
//! - [`parse`]: every line is one JSON saved object, and every JSON string attribute in it
//!   (`visState`, `searchSourceJSON`, `panelsJSON`, the Vega spec, ...) parses too;
//! - [`problems`]: ids are unique, every reference and every `indexRefName` / `panelRefName`
//!   resolves, and every field a visualization, filter, column or sort names exists in the index
//!   template with a type its aggregation accepts;
//! - [`requests`]: the Elasticsearch search each visualization and the saved search make, derived
//!   from the saved object (aggregation-based visualizations: their `aggs`, as Kibana nests them;
//!   Vega: the query in its spec), so tests run them against the real Elasticsearch.
//!
//! `scripts/setup-kibana` imports the file through Kibana's saved-objects API.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// The saved objects, as imported by `scripts/setup-kibana`.
pub const SAVED_OBJECTS: &str = include_str!("../kibana/orderflow.ndjson");

/// One saved object.
#[derive(Debug, Clone)]
pub struct SavedObject {
    pub id: String,
    /// `index-pattern`, `visualization`, `search`, `dashboard`.
    pub kind: String,
    pub title: String,
    pub attributes: Value,
    /// (name, type, id)
    pub references: Vec<(String, String, String)>,
}

impl SavedObject {
    /// A JSON-string attribute (`visState`, ...) parsed.
    fn json_attribute(&self, pointer: &str) -> Result<Option<Value>, String> {
        match self.attributes.pointer(pointer) {
            None => Ok(None),
            Some(Value::String(text)) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("{} {}: {pointer} is not JSON: {e}", self.kind, self.id)),
            Some(other) => Err(format!(
                "{} {}: {pointer} should be a JSON string, is {other}",
                self.kind, self.id
            )),
        }
    }

    pub fn vis_state(&self) -> Result<Option<Value>, String> {
        self.json_attribute("/visState")
    }

    pub fn search_source(&self) -> Result<Option<Value>, String> {
        self.json_attribute("/kibanaSavedObjectMeta/searchSourceJSON")
    }

    pub fn panels(&self) -> Result<Option<Value>, String> {
        self.json_attribute("/panelsJSON")
    }

    /// The spec of a Vega visualization, parsed (the file keeps it strict JSON, a subset of HJSON).
    pub fn vega_spec(&self) -> Result<Option<Value>, String> {
        let Some(state) = self.vis_state()? else {
            return Ok(None);
        };
        if state["type"] != "vega" {
            return Ok(None);
        }
        let text = state["params"]["spec"].as_str().ok_or_else(|| {
            format!(
                "visualization {}: a Vega spec that is not a string",
                self.id
            )
        })?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| format!("visualization {}: the Vega spec is not JSON: {e}", self.id))
    }

    fn has_reference(&self, name: &str) -> bool {
        self.references.iter().any(|(n, _, _)| n == name)
    }
}

/// Every saved object of an NDJSON export; an error names the line that does not parse.
pub fn parse(ndjson: &str) -> Result<Vec<SavedObject>, String> {
    let mut objects = Vec::new();
    for (number, line) in ndjson.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            return Err(format!("line {number} is empty"));
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {number} is not JSON: {e}"))?;
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("line {number}: no string {key:?}"))
        };
        let references = value["references"]
            .as_array()
            .ok_or_else(|| format!("line {number}: no references array"))?
            .iter()
            .map(|r| {
                let field = |k: &str| {
                    r[k].as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("line {number}: a reference without {k}"))
                };
                Ok((field("name")?, field("type")?, field("id")?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let object = SavedObject {
            id: text("id")?,
            kind: text("type")?,
            title: value["attributes"]["title"]
                .as_str()
                .ok_or_else(|| format!("line {number}: no attributes.title"))?
                .to_string(),
            attributes: value["attributes"].clone(),
            references,
        };
        object.vis_state()?;
        object.search_source()?;
        object.panels()?;
        object.vega_spec()?;
        objects.push(object);
    }
    Ok(objects)
}

/// What an aggregation needs of its field.
fn accepts(aggregation: &str, field_type: &str) -> bool {
    let numeric = matches!(
        field_type,
        "long" | "integer" | "short" | "byte" | "double" | "float"
    );
    match aggregation {
        "sum" | "avg" | "min" | "max" | "histogram" | "range" => numeric,
        "date_histogram" | "date_range" => field_type == "date",
        "terms" | "cardinality" | "value_count" | "composite" | "filter" => {
            numeric || matches!(field_type, "keyword" | "date" | "boolean")
        }
        _ => false,
    }
}

/// Everything wrong with the saved objects, checked against the index template's fields (path →
/// type, as `elastic::field_types` lists them). Empty when all is well.
pub fn problems(objects: &[SavedObject], fields: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let types: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let nested: Vec<&str> = fields
        .iter()
        .filter(|(_, t)| t == "nested")
        .map(|(f, _)| f.as_str())
        .collect();
    let under_nested = |field: &str| nested.iter().any(|n| field.starts_with(&format!("{n}.")));
    let field_problem =
        |problems: &mut Vec<String>,
         owner: &SavedObject,
         field: &str,
         use_: &str,
         need: Option<&str>| { check_field(problems, &types, owner, field, use_, need) };

    let mut ids = BTreeSet::new();
    for o in objects {
        if !ids.insert((o.kind.clone(), o.id.clone())) {
            problems.push(format!("{} {} appears twice", o.kind, o.id));
        }
    }
    let exists = |kind: &str, id: &str| objects.iter().any(|o| o.kind == kind && o.id == id);
    let data_view_titles: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind == "index-pattern")
        .map(|o| o.title.as_str())
        .collect();

    for o in objects {
        for (name, kind, id) in &o.references {
            if !exists(kind, id) {
                problems.push(format!(
                    "{} {}: reference {name:?} points to {kind} {id}, which is not in the file",
                    o.kind, o.id
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (name, _, _) in &o.references {
            if !names.insert(name) {
                problems.push(format!(
                    "{} {}: reference name {name:?} twice",
                    o.kind, o.id
                ));
            }
        }
        match o.kind.as_str() {
            "index-pattern" => match o.attributes["timeFieldName"].as_str() {
                Some(time) => field_problem(
                    &mut problems,
                    o,
                    time,
                    "timeFieldName",
                    Some("date_histogram"),
                ),
                None => problems.push(format!("data view {} has no time field", o.id)),
            },
            "visualization" | "search" => {
                check_search_source(o, &mut problems, &types);
                if o.kind == "search" {
                    for column in o.attributes["columns"].as_array().into_iter().flatten() {
                        field_problem(
                            &mut problems,
                            o,
                            column.as_str().unwrap_or("?"),
                            "a column",
                            None,
                        );
                    }
                    for sort in o.attributes["sort"].as_array().into_iter().flatten() {
                        field_problem(
                            &mut problems,
                            o,
                            sort[0].as_str().unwrap_or("?"),
                            "the sort",
                            None,
                        );
                    }
                }
                if let Ok(Some(state)) = o.vis_state() {
                    for agg in state["aggs"].as_array().into_iter().flatten() {
                        let kind = agg["type"].as_str().unwrap_or("?");
                        if let Some(field) = agg["params"]["field"].as_str() {
                            let use_ = format!("aggregation {}", agg["id"]);
                            field_problem(&mut problems, o, field, &use_, Some(kind));
                            if under_nested(field) {
                                problems.push(format!(
                                    "visualization {}: {use_} uses nested field {field:?}, which aggregation-based visualizations cannot reach (use Vega)",
                                    o.id
                                ));
                            }
                        } else if kind != "count" {
                            problems.push(format!(
                                "visualization {}: aggregation {} ({kind}) has no field",
                                o.id, agg["id"]
                            ));
                        }
                    }
                }
                if let Ok(Some(spec)) = o.vega_spec() {
                    for url in vega_urls(&spec) {
                        let index = url["index"].as_str().unwrap_or("?");
                        if !data_view_titles.contains(&index) {
                            problems.push(format!(
                                "visualization {}: Vega queries index {index:?}, not the data view's",
                                o.id
                            ));
                        }
                        if let Some(time) = url["%timefield%"].as_str() {
                            field_problem(
                                &mut problems,
                                o,
                                time,
                                "%timefield%",
                                Some("date_histogram"),
                            );
                        }
                        if url["%context%"] == true && url["body"].get("query").is_some() {
                            problems.push(format!(
                                "visualization {}: a Vega body with %context% must not have a query",
                                o.id
                            ));
                        }
                        for (field, aggregation) in body_fields(&url["body"]) {
                            let need = match aggregation.as_deref() {
                                Some("nested") => {
                                    if types.get(field.as_str()) != Some(&"nested") {
                                        problems.push(format!(
                                            "visualization {}: nested path {field:?} is not a nested field",
                                            o.id
                                        ));
                                    }
                                    None
                                }
                                other => other,
                            };
                            field_problem(&mut problems, o, &field, "the Vega query", need);
                        }
                    }
                }
            }
            "dashboard" => match o.panels() {
                Ok(Some(panels)) => {
                    for panel in panels.as_array().into_iter().flatten() {
                        let index = panel["panelIndex"].as_str().unwrap_or("?");
                        let reference =
                            format!("{index}:{}", panel["panelRefName"].as_str().unwrap_or("?"));
                        if !o.has_reference(&reference) {
                            problems.push(format!(
                                "dashboard {}: panel {index} has no reference {reference:?}",
                                o.id
                            ));
                        }
                    }
                }
                _ => problems.push(format!("dashboard {} has no panels", o.id)),
            },
            other => problems.push(format!("{other} {}: an unexpected type", o.id)),
        }
    }
    problems
}

fn check_field(
    problems: &mut Vec<String>,
    types: &BTreeMap<&str, &str>,
    owner: &SavedObject,
    field: &str,
    use_: &str,
    need: Option<&str>,
) {
    match types.get(field) {
        None => problems.push(format!(
            "{} {}: {use_} names field {field:?}, which the index template does not have",
            owner.kind, owner.id
        )),
        Some(t) => {
            if let Some(aggregation) = need
                && !accepts(aggregation, t)
            {
                problems.push(format!(
                    "{} {}: {use_} runs {aggregation} on {field:?}, a {t} field",
                    owner.kind, owner.id
                ));
            }
        }
    }
}

fn check_search_source(o: &SavedObject, problems: &mut Vec<String>, types: &BTreeMap<&str, &str>) {
    let Ok(Some(source)) = o.search_source() else {
        return;
    };
    if let Some(name) = source["indexRefName"].as_str()
        && !o.has_reference(name)
    {
        problems.push(format!("{} {}: no reference {name:?}", o.kind, o.id));
    }
    if source["query"]["query"]
        .as_str()
        .is_some_and(|q| !q.is_empty())
    {
        problems.push(format!(
            "{} {}: a query string; use filters, whose DSL the checks can read",
            o.kind, o.id
        ));
    }
    for filter in source["filter"].as_array().into_iter().flatten() {
        if let Some(name) = filter["meta"]["indexRefName"].as_str()
            && !o.has_reference(name)
        {
            problems.push(format!("{} {}: no reference {name:?}", o.kind, o.id));
        }
        if let Some(key) = filter["meta"]["key"].as_str() {
            check_field(problems, types, o, key, "a filter", None);
        }
        for (field, _) in query_fields(&filter["query"]) {
            check_field(problems, types, o, &field, "a filter", None);
        }
    }
}

/// The `data.url` objects (Elasticsearch queries) of a Vega or Vega-Lite spec.
pub fn vega_urls(spec: &Value) -> Vec<&Value> {
    let data: Vec<&Value> = match &spec["data"] {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&spec["data"]],
        _ => vec![],
    };
    data.into_iter()
        .filter(|d| d["url"].is_object())
        .map(|d| &d["url"])
        .collect()
}

/// Fields named by term/match/range queries: (field, query type).
fn query_fields(query: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, inner) in map {
                    if matches!(
                        k.as_str(),
                        "term" | "terms" | "match" | "match_phrase" | "range" | "exists"
                    ) {
                        if let Some(obj) = inner.as_object() {
                            if k == "exists" {
                                if let Some(f) = obj.get("field").and_then(Value::as_str) {
                                    out.push((f.to_string(), k.clone()));
                                }
                            } else {
                                for field in obj.keys() {
                                    out.push((field.clone(), k.clone()));
                                }
                            }
                        }
                    } else {
                        walk(inner, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    walk(query, &mut out);
    out
}

/// Fields named in a search body: `field` of aggregations (with the aggregation type; sources of a
/// composite count as `composite`), `path` of nested aggregations (as `nested`), and the fields of
/// the query and of filter aggregations (no aggregation type).
fn body_fields(body: &Value) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = query_fields(&body["query"])
        .into_iter()
        .map(|(f, _)| (f, None))
        .collect();
    fn walk(v: &Value, parent: &str, out: &mut Vec<(String, Option<String>)>) {
        match v {
            Value::Object(map) => {
                for (k, inner) in map {
                    if parent != "composite" && (k == "filter" || k == "filters") {
                        out.extend(query_fields(inner).into_iter().map(|(f, _)| (f, None)));
                    } else if k == "field"
                        && let Some(f) = inner.as_str()
                    {
                        out.push((f.to_string(), Some(parent.to_string())));
                    } else if k == "path" && parent == "nested" {
                        if let Some(p) = inner.as_str() {
                            out.push((p.to_string(), Some("nested".to_string())));
                        }
                    } else if parent == "composite" {
                        walk(inner, "composite", out);
                    } else {
                        walk(inner, k, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, parent, out)),
            _ => {}
        }
    }
    walk(&body["aggs"], "", &mut out);
    out
}

/// The search one saved object makes.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub title: String,
    /// The index to search (the data view's title, or the Vega spec's index).
    pub index: String,
    pub body: Value,
}

/// Kibana's fixed `interval` values of a date_histogram, as calendar intervals (`auto` is taken
/// as a day, what Kibana picks for a month-long range).
fn calendar_interval(interval: &str) -> Option<&'static str> {
    Some(match interval {
        "auto" | "d" => "1d",
        "h" => "1h",
        "w" => "1w",
        "M" => "1M",
        "q" => "1q",
        "y" => "1y",
        _ => return None,
    })
}

/// One aggregation of a legacy visualization as Elasticsearch DSL.
fn legacy_aggregation(agg: &Value, metrics: &[&Value]) -> Result<Value, String> {
    let params = &agg["params"];
    let field = params["field"].clone();
    Ok(match agg["type"].as_str().unwrap_or("?") {
        kind @ ("sum" | "avg" | "min" | "max" | "cardinality") => json!({kind: {"field": field}}),
        "date_histogram" => {
            let interval = params["interval"].as_str().unwrap_or("auto");
            let calendar = calendar_interval(interval)
                .ok_or_else(|| format!("unsupported date_histogram interval {interval:?}"))?;
            json!({"date_histogram": {
                "field": field,
                "calendar_interval": calendar,
                "min_doc_count": params["min_doc_count"].as_u64().unwrap_or(1),
            }})
        }
        "terms" => {
            let direction = params["order"].as_str().unwrap_or("desc");
            let order_by = params["orderBy"].as_str().unwrap_or("_key");
            let order = if order_by == "_key" {
                json!({"_key": direction})
            } else {
                let metric = metrics
                    .iter()
                    .find(|m| m["id"] == order_by)
                    .ok_or_else(|| format!("terms ordered by unknown metric {order_by}"))?;
                if metric["type"] == "count" {
                    json!({"_count": direction})
                } else {
                    json!({order_by: direction})
                }
            };
            let mut terms = json!({"field": field, "size": params["size"].as_u64().unwrap_or(5), "order": order});
            if params["missingBucket"] == true {
                terms["missing"] = json!("__missing__");
            }
            json!({"terms": terms})
        }
        other => return Err(format!("unsupported aggregation type {other}")),
    })
}

/// The `aggs` of a legacy visualization, nested as Kibana nests them: bucket aggregations in their
/// order, the metrics under the innermost one (and beside a terms that orders by one of them).
pub fn legacy_aggs(state: &Value) -> Result<Value, String> {
    let aggs: Vec<&Value> = state["aggs"]
        .as_array()
        .ok_or("a visualization without aggs")?
        .iter()
        .filter(|a| a["enabled"] != false)
        .collect();
    let is_metric = |a: &&Value| matches!(a["schema"].as_str(), Some("metric" | "radius"));
    let metrics: Vec<&Value> = aggs.iter().copied().filter(is_metric).collect();
    let buckets: Vec<&Value> = aggs.iter().copied().filter(|a| !is_metric(a)).collect();
    let metric_aggs = |only: Option<&str>| -> Result<serde_json::Map<String, Value>, String> {
        let mut out = serde_json::Map::new();
        for m in &metrics {
            let id = m["id"].as_str().unwrap_or("?");
            if m["type"] == "count" || only.is_some_and(|o| o != id) {
                continue;
            }
            out.insert(id.to_string(), legacy_aggregation(m, &metrics)?);
        }
        Ok(out)
    };
    let mut inner = metric_aggs(None)?;
    for bucket in buckets.iter().rev() {
        let mut agg = legacy_aggregation(bucket, &metrics)?;
        let order_by = bucket["params"]["orderBy"].as_str().unwrap_or("_key");
        let mut children = inner;
        if order_by != "_key" {
            for (k, v) in metric_aggs(Some(order_by))? {
                children.entry(k).or_insert(v);
            }
        }
        if !children.is_empty() {
            agg["aggs"] = Value::Object(children);
        }
        let id = bucket["id"].as_str().unwrap_or("?").to_string();
        inner = serde_json::Map::new();
        inner.insert(id, agg);
    }
    Ok(Value::Object(inner))
}

/// The requests of every visualization and saved search, over `[from_ms, to_ms)` of the data
/// view's time field (what the dashboard's time picker adds).
pub fn requests(objects: &[SavedObject], from_ms: i64, to_ms: i64) -> Result<Vec<Request>, String> {
    let data_view = |id: &str| {
        objects
            .iter()
            .find(|o| o.kind == "index-pattern" && o.id == id)
            .ok_or_else(|| format!("no data view {id}"))
    };
    let time_range = |field: &str| json!({"range": {field: {"gte": from_ms, "lt": to_ms, "format": "epoch_millis"}}});
    let mut out = Vec::new();
    for o in objects {
        if o.kind != "visualization" && o.kind != "search" {
            continue;
        }
        if let Some(spec) = o.vega_spec()? {
            for url in vega_urls(&spec) {
                let mut body = url["body"].clone();
                if url["%context%"] == true {
                    let mut filters = Vec::new();
                    if let Some(time) = url["%timefield%"].as_str() {
                        filters.push(time_range(time));
                    }
                    body["query"] = json!({"bool": {"filter": filters}});
                }
                out.push(Request {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    index: url["index"].as_str().unwrap_or_default().to_string(),
                    body,
                });
            }
            continue;
        }
        let source = o
            .search_source()?
            .ok_or_else(|| format!("{} has no search source", o.id))?;
        let view_ref = source["indexRefName"]
            .as_str()
            .and_then(|name| o.references.iter().find(|(n, _, _)| n == name))
            .ok_or_else(|| format!("{} has no data view reference", o.id))?;
        let view = data_view(&view_ref.2)?;
        let mut filters: Vec<Value> = source["filter"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["meta"]["disabled"] != true)
            .map(|f| {
                if f["meta"]["negate"] == true {
                    json!({"bool": {"must_not": [f["query"].clone()]}})
                } else {
                    f["query"].clone()
                }
            })
            .collect();
        if let Some(time) = view.attributes["timeFieldName"].as_str() {
            filters.push(time_range(time));
        }
        let query = json!({"bool": {"filter": filters}});
        let body = if o.kind == "search" {
            let sort: Vec<Value> = o.attributes["sort"]
                .as_array()
                .into_iter()
                .flatten()
                .map(
                    |s| json!({s[0].as_str().unwrap_or("_score"): s[1].as_str().unwrap_or("desc")}),
                )
                .collect();
            json!({"size": 50, "query": query, "sort": sort, "_source": o.attributes["columns"]})
        } else {
            let state = o
                .vis_state()?
                .ok_or_else(|| format!("{} has no visState", o.id))?;
            json!({"size": 0, "query": query, "aggs": legacy_aggs(&state)?})
        };
        out.push(Request {
            id: o.id.clone(),
            title: o.title.clone(),
            index: view.title.clone(),
            body,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elastic::field_types;

    fn objects() -> Vec<SavedObject> {
        parse(SAVED_OBJECTS).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_line_parses_and_every_check_passes() {
        let objects = objects();
        let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "index-pattern").count(), 1);
        assert_eq!(kinds.iter().filter(|k| **k == "dashboard").count(), 1);
        assert!(kinds.iter().filter(|k| **k == "visualization").count() >= 4);
        let problems = problems(&objects, &field_types());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_data_view_is_the_sinks_index() {
        let objects = objects();
        let view = objects.iter().find(|o| o.kind == "index-pattern").unwrap();
        assert_eq!(view.title, crate::config::DEFAULT_INDEX);
        assert_eq!(view.attributes["timeFieldName"], "closed_at");
    }

    #[test]
    fn the_dashboard_shows_every_visualization_and_the_search() {
        let objects = objects();
        let dashboard = objects.iter().find(|o| o.kind == "dashboard").unwrap();
        for o in objects
            .iter()
            .filter(|o| o.kind == "visualization" || o.kind == "search")
        {
            assert!(
                dashboard.references.iter().any(|(_, _, id)| *id == o.id),
                "{} is not on the dashboard",
                o.id
            );
        }
    }

    fn with_line(edit: impl Fn(&mut Value)) -> Vec<String> {
        let mut lines: Vec<Value> = SAVED_OBJECTS
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for line in &mut lines {
            edit(line);
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        problems(&parse(&text).unwrap(), &field_types())
    }

    #[test]
    fn an_unknown_field_is_caught() {
        let problems = with_line(|line| {
            if line["id"] == "orderflow-top-customers" {
                let state = line["attributes"]["visState"]
                    .as_str()
                    .unwrap()
                    .replace("\"customer_id\"", "\"customer\"");
                line["attributes"]["visState"] = Value::String(state);
            }
        });
        assert!(
            problems.iter().any(|p| p.contains("\"customer\"")),
            "{problems:#?}"
        );
        let problems = with_line(|line| {
            if line["id"] == "orderflow-units-by-unit-price" {
                let state = line["attributes"]["visState"]
                    .as_str()
                    .unwrap()
                    .replace("lines.quantity", "lines.qty");
                line["attributes"]["visState"] = Value::String(state);
            }
        });
        assert!(
            problems.iter().any(|p| p.contains("lines.qty")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_dangling_reference_and_a_duplicate_id_are_caught() {
        let problems = with_line(|line| {
            if line["type"] == "dashboard" {
                line["references"][0]["id"] = json!("nowhere");
            }
            if line["id"] == "orderflow-outcomes" {
                line["id"] = json!("orderflow-top-customers");
            }
        });
        assert!(
            problems.iter().any(|p| p.contains("nowhere")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("appears twice")),
            "{problems:#?}"
        );
    }

    #[test]
    fn legacy_aggs_nest_buckets_with_metrics_inside() {
        let objects = objects();
        let table = objects
            .iter()
            .find(|o| o.id == "orderflow-top-customers")
            .unwrap();
        let aggs = legacy_aggs(&table.vis_state().unwrap().unwrap()).unwrap();
        let customers = &aggs["4"]["aggs"]["5"];
        assert_eq!(aggs["4"]["terms"]["field"], "currency");
        assert_eq!(customers["terms"]["field"], "customer_id");
        assert_eq!(customers["terms"]["order"], json!({"1": "desc"}));
        assert_eq!(customers["aggs"]["1"]["sum"]["field"], "total_minor");
    }
}
