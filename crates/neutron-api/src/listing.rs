//! Collection queries: filters on any attribute (repeated values mean OR), tag filters,
//! `fields=`, `sort_key`/`sort_dir`, and `limit`/`marker` pagination with `<collection>_links`.

use crate::body::parse_bool_str;
use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

const TAG_FILTERS: [&str; 4] = ["tags", "tags-any", "not-tags", "not-tags-any"];

/// A parsed query string.
#[derive(Debug, Default, Clone)]
pub struct Query {
    /// attribute → accepted values (OR).
    pub filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    /// Attributes one may filter on that answers do not show (a subnet's `shared`).
    pub hidden: Vec<&'static str>,
    /// The collection's path under `/v2.0` in page links, when it is not the
    /// collection's name (`qos/policies`).
    pub path: Option<&'static str>,
    /// The marker's object when the caller cannot see it: Neutron places such a marker
    /// in the sort order all the same, and pages from there over what the caller sees.
    pub hidden_marker: Option<Map<String, Value>>,
}

fn bad_filter(msg: String) -> ApiError {
    ApiError::bad_request("HTTPBadRequest", msg)
}

impl Query {
    /// True when the query filters on `attr`.
    pub fn filters_on(&self, attr: &str) -> bool {
        self.filters.iter().any(|(k, _)| k == attr)
    }

    /// Parses `raw` for a collection whose objects have `attrs`.
    pub fn parse(raw: Option<&str>, attrs: &[&str]) -> ApiResult<Query> {
        let mut q = Query::default();
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "fields" => q.fields.extend(v.split(',').map(str::to_string)),
                "sort_key" => {
                    if !attrs.contains(&v.as_str()) {
                        return Err(bad_filter(format!(
                            "{v} is an invalid attribute for sort_key"
                        )));
                    }
                    sort_keys.push(v)
                }
                "sort_dir" => match v.as_str() {
                    "asc" => sort_dirs.push(true),
                    "desc" => sort_dirs.push(false),
                    _ => {
                        return Err(bad_filter(format!(
                            "{v} is an invalid value for sort_dir, valid values are 'asc' and 'desc'"
                        )));
                    }
                },
                "limit" => {
                    // Neutron: an integer 0 or greater, 0 meaning no limit.
                    let n: usize = v.trim().parse().map_err(|_| {
                        ApiError::bad_request(
                            "BadRequest",
                            format!(
                                "Bad limit request: Limit must be an integer 0 or greater and not '{v}'."
                            ),
                        )
                    })?;
                    q.limit = (n > 0).then_some(n);
                }
                "marker" => q.marker = Some(v),
                "page_reverse" => {
                    q.page_reverse = parse_bool_str(&v)
                        .ok_or_else(|| bad_filter(format!("'{v}' is not a valid boolean value")))?
                }
                _ => {
                    let known = attrs.contains(&k.as_str())
                        || (TAG_FILTERS.contains(&k.as_str()) && attrs.contains(&"tags"));
                    if !known {
                        return Err(bad_filter(format!(
                            "['{k}'] is invalid attribute for filtering"
                        )));
                    }
                    match q.filters.iter_mut().find(|(a, _)| *a == k) {
                        Some((_, vals)) => vals.push(v),
                        None => q.filters.push((k, vec![v])),
                    }
                }
            }
        }
        if sort_dirs.len() > sort_keys.len() {
            return Err(bad_filter(
                "The number of sort_keys and sort_dirs must be same".into(),
            ));
        }
        q.sort = sort_keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, sort_dirs.get(i).copied().unwrap_or(true)))
            .collect();
        Ok(q)
    }

    /// True when `item` passes every filter.
    pub fn matches(&self, item: &Map<String, Value>) -> bool {
        self.filters.iter().all(|(attr, wanted)| {
            if TAG_FILTERS.contains(&attr.as_str()) {
                return tags_match(attr, wanted, item.get("tags"));
            }
            let v = item.get(attr).unwrap_or(&Value::Null);
            wanted.iter().any(|w| value_matches(v, w))
        })
    }

    /// Keeps only the requested fields (all when none were asked for).
    pub fn project(&self, mut item: Map<String, Value>) -> Map<String, Value> {
        if !self.fields.is_empty() {
            item.retain(|k, _| self.fields.iter().any(|f| f == k));
        }
        item
    }

    /// Filters, sorts, pages and projects `items` into the response body of `collection`.
    pub fn respond(
        &self,
        collection: &str,
        base_url: &str,
        items: Vec<Map<String, Value>>,
    ) -> ApiResult<Value> {
        let mut items: Vec<_> = items
            .into_iter()
            .filter(|i| self.matches(i))
            .map(|mut i| {
                for h in &self.hidden {
                    i.remove(*h);
                }
                i
            })
            .collect();
        // Pagination needs a total order: the sort keys, then id.
        if !self.sort.is_empty() || self.limit.is_some() || self.marker.is_some() {
            items.sort_by(|a, b| self.order(a, b));
        }
        let mut links = Vec::new();
        let hidden = self.hidden_marker.as_ref().filter(|h| {
            let id = h.get("id").and_then(Value::as_str);
            id.is_some() && id == self.marker.as_deref()
        });
        if let Some(h) = hidden {
            let at = items.partition_point(|i| self.before(i, h));
            items.insert(at, h.clone());
        }
        let start = match &self.marker {
            Some(m) if hidden.is_some() => {
                // Stand-in for the marker only: taken out again, the page starts where it
                // stood (forwards or backwards).
                let pos = items
                    .iter()
                    .position(|i| i.get("id").and_then(Value::as_str) == Some(m.as_str()))
                    .unwrap_or(items.len());
                if pos < items.len() {
                    items.remove(pos);
                }
                pos
            }
            Some(m) => {
                let pos = items
                    .iter()
                    .position(|i| i.get("id").and_then(Value::as_str) == Some(m.as_str()))
                    .ok_or_else(|| bad_filter(format!("Marker {m} could not be found")))?;
                if self.page_reverse { pos } else { pos + 1 }
            }
            None if self.page_reverse => items.len(),
            None => 0,
        };
        let page: Vec<_> = match (self.limit, self.page_reverse) {
            (Some(limit), false) => {
                let end = (start + limit).min(items.len());
                items[start..end].to_vec()
            }
            (Some(limit), true) => items[start.saturating_sub(limit)..start].to_vec(),
            (None, false) => items.split_off(start.min(items.len())),
            (None, true) => items[..start].to_vec(),
        };
        // Neutron's links (api_common.get_pagination_links): `next` unless a forward page
        // came short, `previous` unless a reverse page came short; each marks the page's
        // last (first) item, or none on an empty page.
        if let Some(limit) = self.limit {
            let short = page.len() < limit;
            if !short || self.page_reverse {
                links.push(self.link(collection, base_url, page.last(), "next", false));
            }
            if !short || !self.page_reverse {
                links.push(self.link(collection, base_url, page.first(), "previous", true));
            }
        }
        let page: Vec<Value> = page
            .into_iter()
            .map(|i| Value::Object(self.project(i)))
            .collect();
        let mut body = Map::new();
        body.insert(collection.to_string(), Value::Array(page));
        if !links.is_empty() {
            body.insert(format!("{collection}_links"), Value::Array(links));
        }
        Ok(Value::Object(body))
    }

    /// The listing's order: the sort keys, then id.
    fn order(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
        for (key, asc) in &self.sort {
            let o = compare(a.get(key), b.get(key));
            if o != Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        compare(a.get("id"), b.get("id"))
    }

    fn before(&self, a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
        self.order(a, b) == Ordering::Less
    }

    fn link(
        &self,
        collection: &str,
        base_url: &str,
        marker_item: Option<&Map<String, Value>>,
        rel: &str,
        reverse: bool,
    ) -> Value {
        let marker = marker_item
            .and_then(|i| i.get("id"))
            .and_then(Value::as_str);
        let mut ser = form_urlencoded::Serializer::new(String::new());
        if let Some(l) = self.limit {
            ser.append_pair("limit", &l.to_string());
        }
        for (k, vals) in &self.filters {
            for v in vals {
                ser.append_pair(k, v);
            }
        }
        for f in &self.fields {
            ser.append_pair("fields", f);
        }
        for (k, asc) in &self.sort {
            ser.append_pair("sort_key", k);
            ser.append_pair("sort_dir", if *asc { "asc" } else { "desc" });
        }
        if let Some(m) = marker {
            ser.append_pair("marker", m);
        }
        if reverse {
            ser.append_pair("page_reverse", "True");
        }
        let path = self.path.unwrap_or(collection);
        json!({"rel": rel, "href": format!("{base_url}/v2.0/{path}?{}", ser.finish())})
    }
}

fn tags_match(kind: &str, wanted: &[String], tags: Option<&Value>) -> bool {
    let have: Vec<&str> = tags
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let wanted: Vec<&str> = wanted.iter().flat_map(|w| w.split(',')).collect();
    let all = wanted.iter().all(|t| have.contains(t));
    let any = wanted.iter().any(|t| have.contains(t));
    match kind {
        "tags" => all,
        "tags-any" => any,
        "not-tags" => !all,
        _ => !any,
    }
}

fn value_matches(v: &Value, wanted: &str) -> bool {
    match v {
        Value::String(s) => s == wanted,
        Value::Bool(b) => parse_bool_str(wanted) == Some(*b),
        Value::Number(n) => n.to_string() == wanted,
        Value::Null => wanted.is_empty() || wanted.eq_ignore_ascii_case("none"),
        Value::Array(items) => items.iter().any(|i| match i {
            // `fixed_ips=ip_address=10.0.0.3` style: match a member of each element.
            Value::Object(o) => wanted
                .split_once('=')
                .is_some_and(|(k, w)| o.get(k).is_some_and(|x| value_matches(x, w))),
            other => value_matches(other, wanted),
        }),
        Value::Object(_) => false,
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTRS: &[&str] = &["id", "name", "shared", "mtu", "tags", "fixed_ips"];

    fn items() -> Vec<Map<String, Value>> {
        (0..5)
            .map(|i| {
                json!({
                    "id": format!("id{i}"), "name": format!("n{}", i % 2), "shared": i == 3,
                    "mtu": 1400 + i, "tags": if i < 2 { json!(["red"]) } else { json!(["blue", "red"]) },
                    "fixed_ips": [{"subnet_id": "s", "ip_address": format!("10.0.0.{i}")}],
                })
                .as_object()
                .cloned()
                .unwrap()
            })
            .collect()
    }

    fn ids(body: &Value, coll: &str) -> Vec<String> {
        body[coll]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn filters_or_within_and_across() {
        let q = Query::parse(Some("name=n0&mtu=1400&mtu=1402&mtu=1401"), ATTRS).unwrap();
        assert_eq!(
            ids(&q.respond("x", "", items()).unwrap(), "x"),
            ["id0", "id2"]
        );
        let q = Query::parse(Some("shared=True"), ATTRS).unwrap();
        assert_eq!(ids(&q.respond("x", "", items()).unwrap(), "x"), ["id3"]);
        let q = Query::parse(Some("fixed_ips=ip_address%3D10.0.0.4"), ATTRS).unwrap();
        assert_eq!(ids(&q.respond("x", "", items()).unwrap(), "x"), ["id4"]);
    }

    #[test]
    fn tag_filters() {
        let q = Query::parse(Some("tags=blue,red"), ATTRS).unwrap();
        assert_eq!(
            ids(&q.respond("x", "", items()).unwrap(), "x"),
            ["id2", "id3", "id4"]
        );
        let q = Query::parse(Some("not-tags-any=blue"), ATTRS).unwrap();
        assert_eq!(
            ids(&q.respond("x", "", items()).unwrap(), "x"),
            ["id0", "id1"]
        );
    }

    #[test]
    fn unknown_filter_and_sort_key_are_400() {
        assert!(Query::parse(Some("bogus=1"), ATTRS).is_err());
        assert!(Query::parse(Some("sort_key=bogus"), ATTRS).is_err());
        assert!(Query::parse(Some("sort_dir=up&sort_key=id"), ATTRS).is_err());
    }

    #[test]
    fn sort_and_paginate_with_links() {
        let q = Query::parse(Some("sort_key=mtu&sort_dir=desc&limit=2"), ATTRS).unwrap();
        let body = q.respond("nets", "http://h", items()).unwrap();
        assert_eq!(ids(&body, "nets"), ["id4", "id3"]);
        let next = body["nets_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker=id3"), "{next}");
        let raw = next.split_once('?').unwrap().1;
        let q2 = Query::parse(Some(raw), ATTRS).unwrap();
        let body2 = q2.respond("nets", "http://h", items()).unwrap();
        assert_eq!(ids(&body2, "nets"), ["id2", "id1"]);
        let q3 =
            Query::parse(Some("sort_key=mtu&sort_dir=desc&limit=2&marker=id1"), ATTRS).unwrap();
        let body3 = q3.respond("nets", "http://h", items()).unwrap();
        assert_eq!(ids(&body3, "nets"), ["id0"]);
        assert!(
            body3["nets_links"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["rel"] != "next")
        );
    }

    #[test]
    fn links_follow_neutrons_rule() {
        let links = |q: &str| -> Vec<(String, String)> {
            let body = Query::parse(Some(q), ATTRS)
                .unwrap()
                .respond("nets", "http://h", items())
                .unwrap();
            body["nets_links"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|l| {
                            let href = l["href"].as_str().unwrap();
                            let q = href.split_once('?').unwrap().1.to_string();
                            (l["rel"].as_str().unwrap().to_string(), q)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let rels = |l: &[(String, String)]| l.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
        // A full forward page: next (its last item) and previous (its first).
        let full = links("sort_key=id&limit=5");
        assert_eq!(rels(&full), ["next", "previous"]);
        assert!(full[0].1.contains("marker=id4") && !full[0].1.contains("page_reverse"));
        assert!(full[1].1.contains("marker=id0") && full[1].1.contains("page_reverse=True"));
        // The empty page after it: no next; previous without a marker walks back from
        // the end.
        let empty = links("sort_key=id&limit=5&marker=id4");
        assert_eq!(rels(&empty), ["previous"]);
        assert!(!empty[0].1.contains("marker"), "{:?}", empty);
        let back = Query::parse(Some(&empty[0].1), ATTRS)
            .unwrap()
            .respond("nets", "http://h", items())
            .unwrap();
        assert_eq!(ids(&back, "nets"), ["id0", "id1", "id2", "id3", "id4"]);
        // A short page: previous only; a short reverse page: next only.
        assert_eq!(rels(&links("sort_key=id&limit=6")), ["previous"]);
        assert_eq!(
            rels(&links("sort_key=id&limit=2&marker=id1&page_reverse=True")),
            ["next"]
        );
    }

    #[test]
    fn fields_project() {
        let q = Query::parse(Some("fields=id&fields=name"), ATTRS).unwrap();
        let body = q.respond("x", "", items()).unwrap();
        let first = body["x"][0].as_object().unwrap();
        assert_eq!(first.len(), 2);
    }
}
