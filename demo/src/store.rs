//! The in-memory, versioned resource store.

use crate::time;
use fhirwall::fhir::ResourceType;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One stored version of a resource, or a deletion tombstone.
#[derive(Clone, Debug)]
pub(crate) struct Version {
    pub(crate) resource_type: String,
    pub(crate) id: String,
    pub(crate) version_id: u64,
    pub(crate) last_updated_ms: i64,
    /// `None` for a deletion.
    pub(crate) resource: Option<Value>,
    pub(crate) kind: WriteKind,
}

impl Version {
    /// `W/"<versionId>"`.
    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version_id)
    }
}

/// How a version came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Create,
    Update,
    Delete,
}

/// What a read finds.
pub(crate) enum Lookup<'a> {
    Live(&'a Version),
    Deleted,
    Missing,
}

/// Which history a `_history` interaction asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HistoryScope<'a> {
    System,
    Type(&'a str),
    Instance(&'a str, &'a str),
}

/// The store's data. Cloned whole for transactions (apply to a copy, swap on success).
#[derive(Clone, Debug, Default)]
pub(crate) struct Db {
    /// type → id → versions, oldest first.
    resources: BTreeMap<String, BTreeMap<String, Vec<Version>>>,
    /// Every write in order: (type, id, versionId).
    log: Vec<(String, String, u64)>,
    next_id: u64,
    last_ms: i64,
}

impl Db {
    fn tick(&mut self) -> i64 {
        self.last_ms = time::now_ms().max(self.last_ms + 1);
        self.last_ms
    }

    /// The current state of `type/id`.
    pub(crate) fn lookup(&self, ty: &str, id: &str) -> Lookup<'_> {
        match self.versions(ty, id).and_then(|v| v.last()) {
            Some(v) if v.resource.is_some() => Lookup::Live(v),
            Some(_) => Lookup::Deleted,
            None => Lookup::Missing,
        }
    }

    /// The live resource `type/id`, if any.
    pub(crate) fn get(&self, ty: &str, id: &str) -> Option<&Value> {
        match self.lookup(ty, id) {
            Lookup::Live(v) => v.resource.as_ref(),
            _ => None,
        }
    }

    /// Every version of `type/id`, oldest first.
    pub(crate) fn versions(&self, ty: &str, id: &str) -> Option<&[Version]> {
        self.resources
            .get(ty)
            .and_then(|m| m.get(id))
            .map(Vec::as_slice)
    }

    /// The live resources of one type, by id.
    pub(crate) fn live(&self, ty: &str) -> impl Iterator<Item = &Value> + '_ {
        self.resources
            .get(ty)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|v| v.last().and_then(|v| v.resource.as_ref()))
    }

    /// The live resources of every type.
    pub(crate) fn live_all(&self) -> impl Iterator<Item = &Value> + '_ {
        self.resources
            .values()
            .flat_map(|m| m.values())
            .filter_map(|v| v.last().and_then(|v| v.resource.as_ref()))
    }

    /// The types with at least one live resource.
    pub(crate) fn live_types(&self) -> Vec<&str> {
        self.resources
            .iter()
            .filter(|(ty, _)| self.live(ty).next().is_some())
            .map(|(ty, _)| ty.as_str())
            .collect()
    }

    /// The versions in a history scope, newest first.
    pub(crate) fn history(&self, scope: HistoryScope<'_>) -> Vec<&Version> {
        match scope {
            HistoryScope::Instance(ty, id) => self
                .versions(ty, id)
                .map(|v| v.iter().rev().collect())
                .unwrap_or_default(),
            HistoryScope::Type(wanted) => self
                .log
                .iter()
                .rev()
                .filter(|(ty, _, _)| ty == wanted)
                .filter_map(|(ty, id, vid)| self.version(ty, id, *vid))
                .collect(),
            HistoryScope::System => self
                .log
                .iter()
                .rev()
                .filter_map(|(ty, id, vid)| self.version(ty, id, *vid))
                .collect(),
        }
    }

    /// One version of `type/id`.
    pub(crate) fn version(&self, ty: &str, id: &str, vid: u64) -> Option<&Version> {
        self.versions(ty, id)?.iter().find(|v| v.version_id == vid)
    }

    /// An id no resource of this type has used.
    pub(crate) fn fresh_id(&mut self, ty: &str) -> String {
        loop {
            self.next_id += 1;
            let id = self.next_id.to_string();
            if self.versions(ty, &id).is_none() {
                return id;
            }
        }
    }

    /// Stores a new version of `resource` (whose `resourceType` is `ty`) as `ty/id`, setting
    /// `id`, `meta.versionId` and `meta.lastUpdated`. Returns the version and whether it
    /// created the resource (no live version before).
    pub(crate) fn put(&mut self, ty: &str, id: &str, mut resource: Value) -> (Version, bool) {
        let ms = self.tick();
        let history = self
            .resources
            .entry(ty.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default();
        let created = !matches!(history.last(), Some(v) if v.resource.is_some());
        let version_id = history.last().map_or(1, |v| v.version_id + 1);
        if let Value::Object(obj) = &mut resource {
            stamp(obj, id, version_id, ms);
        }
        let version = Version {
            resource_type: ty.to_owned(),
            id: id.to_owned(),
            version_id,
            last_updated_ms: ms,
            resource: Some(resource),
            kind: if created {
                WriteKind::Create
            } else {
                WriteKind::Update
            },
        };
        history.push(version.clone());
        self.log.push((ty.to_owned(), id.to_owned(), version_id));
        (version, created)
    }

    /// Deletes `ty/id`, leaving a tombstone version. Returns the tombstone, or `None` when
    /// there was no live resource.
    pub(crate) fn delete(&mut self, ty: &str, id: &str) -> Option<Version> {
        if !matches!(self.lookup(ty, id), Lookup::Live(_)) {
            return None;
        }
        let ms = self.tick();
        let history = self.resources.get_mut(ty)?.get_mut(id)?;
        let version_id = history.last().map_or(1, |v| v.version_id + 1);
        let version = Version {
            resource_type: ty.to_owned(),
            id: id.to_owned(),
            version_id,
            last_updated_ms: ms,
            resource: None,
            kind: WriteKind::Delete,
        };
        history.push(version.clone());
        self.log.push((ty.to_owned(), id.to_owned(), version_id));
        Some(version)
    }
}

fn stamp(obj: &mut Map<String, Value>, id: &str, version_id: u64, ms: i64) {
    obj.insert("id".into(), Value::String(id.to_owned()));
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Value::Object(meta) = meta {
        meta.insert("versionId".into(), Value::String(version_id.to_string()));
        meta.insert(
            "lastUpdated".into(),
            Value::String(time::format_instant(ms)),
        );
    }
}

/// Whether `id` is a valid FHIR id: `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Why a resource can't be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The resource is not a JSON object.
    NotAnObject,
    /// `resourceType` is missing or not a string.
    MissingResourceType,
    /// `resourceType` is not a FHIR R4 resource type.
    UnknownResourceType(String),
    /// `resourceType` differs from the type the request addressed.
    WrongResourceType {
        /// The type in the URL.
        expected: String,
        /// The type in the body.
        found: String,
    },
    /// `id` is missing where one is required, or is not a valid FHIR id.
    InvalidId,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotAnObject => f.write_str("a resource must be a JSON object"),
            StoreError::MissingResourceType => f.write_str("the resource has no resourceType"),
            StoreError::UnknownResourceType(t) => {
                write!(f, "{t:?} is not a FHIR R4 resource type")
            }
            StoreError::WrongResourceType { expected, found } => {
                write!(
                    f,
                    "resourceType is {found:?} but the request addresses {expected}"
                )
            }
            StoreError::InvalidId => {
                f.write_str("the resource id is missing or not a valid FHIR id")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Checks the parts of `resource` the store relies on and returns its `resourceType`.
pub(crate) fn check_resource(
    resource: &Value,
    expected: Option<&str>,
) -> Result<String, StoreError> {
    let obj = resource.as_object().ok_or(StoreError::NotAnObject)?;
    let ty = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(StoreError::MissingResourceType)?;
    if ResourceType::from_name(ty).is_none() {
        return Err(StoreError::UnknownResourceType(ty.to_owned()));
    }
    if let Some(expected) = expected {
        if expected != ty {
            return Err(StoreError::WrongResourceType {
                expected: expected.to_owned(),
                found: ty.to_owned(),
            });
        }
    }
    Ok(ty.to_owned())
}

/// A thread-safe, cheaply cloned, versioned in-memory FHIR store.
///
/// Resources are `serde_json::Value`s keyed by type and id. Every write keeps the previous
/// versions (`meta.versionId`, `meta.lastUpdated`), and deletes leave a tombstone, so old
/// versions stay readable with vread and `_history`.
///
/// ```
/// use fhirwall_demo::MemoryStore;
/// use serde_json::json;
///
/// let store = MemoryStore::new();
/// let created = store.create(json!({"resourceType": "Patient", "gender": "female"})).unwrap();
/// let id = created["id"].as_str().unwrap();
/// assert_eq!(store.read("Patient", id).unwrap()["meta"]["versionId"], "1");
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    db: Arc<RwLock<Db>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn read_db(&self) -> RwLockReadGuard<'_, Db> {
        // A panic while holding the lock can't leave `Db` half-written in a way that
        // matters to a demo; keep serving.
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_db(&self) -> RwLockWriteGuard<'_, Db> {
        self.db.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `resource` under a new server-assigned id; returns the stored resource.
    pub fn create(&self, resource: Value) -> Result<Value, StoreError> {
        let ty = check_resource(&resource, None)?;
        let mut db = self.write_db();
        let id = db.fresh_id(&ty);
        let (v, _) = db.put(&ty, &id, resource);
        Ok(v.resource.unwrap_or(Value::Null))
    }

    /// Stores `resource` under its own `id` (creating or updating); returns the stored resource.
    pub fn put(&self, resource: Value) -> Result<Value, StoreError> {
        let ty = check_resource(&resource, None)?;
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| valid_id(id))
            .ok_or(StoreError::InvalidId)?
            .to_owned();
        let mut db = self.write_db();
        let (v, _) = db.put(&ty, &id, resource);
        Ok(v.resource.unwrap_or(Value::Null))
    }

    /// The current version of `type/id`, unless it doesn't exist or was deleted.
    pub fn read(&self, resource_type: &str, id: &str) -> Option<Value> {
        self.read_db().get(resource_type, id).cloned()
    }

    /// Deletes `type/id`; returns whether there was a live resource to delete.
    pub fn delete(&self, resource_type: &str, id: &str) -> bool {
        self.write_db().delete(resource_type, id).is_some()
    }

    /// The number of live resources of one type.
    pub fn count(&self, resource_type: &str) -> usize {
        self.read_db().live(resource_type).count()
    }

    /// The number of live resources.
    pub fn len(&self) -> usize {
        self.read_db().live_all().count()
    }

    /// Whether there are no live resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live resources of one type, in id order.
    pub fn all(&self, resource_type: &str) -> Vec<Value> {
        self.read_db().live(resource_type).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_tombstones() {
        let mut db = Db::default();
        let (v, created) = db.put("Patient", "a", json!({"resourceType": "Patient"}));
        assert!(created);
        assert_eq!(v.version_id, 1);
        let (v, created) = db.put(
            "Patient",
            "a",
            json!({"resourceType": "Patient", "active": true}),
        );
        assert!(!created);
        assert_eq!(v.resource.as_ref().unwrap()["meta"]["versionId"], "2");
        assert!(db.delete("Patient", "a").is_some());
        assert!(db.delete("Patient", "a").is_none());
        assert!(matches!(db.lookup("Patient", "a"), Lookup::Deleted));
        assert!(db.version("Patient", "a", 2).unwrap().resource.is_some());
        let (v, created) = db.put("Patient", "a", json!({"resourceType": "Patient"}));
        assert!(created);
        assert_eq!(v.version_id, 4);
        assert_eq!(db.history(HistoryScope::System).len(), 4);
        assert_eq!(db.history(HistoryScope::Type("Observation")).len(), 0);
    }

    #[test]
    fn rejects_bad_resources() {
        let store = MemoryStore::new();
        assert_eq!(store.create(json!([])), Err(StoreError::NotAnObject));
        assert_eq!(
            store.create(json!({})),
            Err(StoreError::MissingResourceType)
        );
        assert!(matches!(
            store.create(json!({"resourceType": "Nope"})),
            Err(StoreError::UnknownResourceType(_))
        ));
        assert_eq!(
            store.put(json!({"resourceType": "Patient", "id": "no spaces"})),
            Err(StoreError::InvalidId)
        );
        assert!(store.is_empty());
    }
}
