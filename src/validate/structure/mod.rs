//! FHIR R4 structure, checked in the same pass that scans the JSON (FHIR R4 §2.6.2 "JSON
//! Representation of Resources"), from the generated StructureDefinition tables.
//!
//! Each object is checked against the element that holds it: unknown keys, arrays where the
//! element is single (and the reverse), the JSON shape and format of primitives, exactly one
//! variant of a choice element, `_x` primitive extensions, `null` and empty values, codes
//! outside complete required bindings, missing required elements, reference syntax; nested
//! resources (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`) the same
//! way. No tree is built: the only state is the path and the elements seen in each open object.

use super::json::{JResult, JsonErrorKind, Next, Scanner};
use super::problem::{Problem, ProblemClass, Rejection};
use super::references::{self, RefContext};
use super::{primitives, ValidateConfig};
use crate::fhir::tables::{self, ElementDef};
use crate::fhir::{IssueType, ResourceType};
use std::borrow::Cow;

mod kind;
#[cfg(test)]
mod tests;

use kind::{kind_of, repeats, type_matches, Kind};

/// What a valid resource body said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Its `resourceType`.
    pub resource_type: ResourceType,
    /// Its `id`, if it has one.
    pub id: Option<String>,
}

/// An element seen in the open object: which element, which choice variant, value or `_x`.
#[derive(Clone, Copy)]
struct Seen {
    elem: &'static ElementDef,
    variant: usize,
    ext: bool,
}

struct Checker<'a, 'c> {
    s: Scanner<'a>,
    cfg: &'c ValidateConfig,
    problems: Vec<Problem>,
    path: String,
    seen: Vec<Seen>,
    scratch: String,
    bundles: usize,
}

/// Checks that `body` is one FHIR R4 resource in JSON, in one pass.
pub fn check_resource(body: &[u8], cfg: &ValidateConfig) -> Result<Checked, Rejection> {
    let mut c = Checker {
        s: Scanner::new(body, cfg.max_depth),
        cfg,
        problems: Vec::new(),
        path: String::new(),
        seen: Vec::new(),
        scratch: String::new(),
        bundles: 0,
    };
    let run = |c: &mut Checker<'_, '_>| -> JResult<Option<Checked>> {
        let checked = if c.s.peek()? == Next::Object {
            c.resource(true)?
        } else {
            c.problem(
                ProblemClass::Structure,
                IssueType::Structure,
                "the body must be a JSON object",
                String::new(),
            );
            c.s.skip_value()?;
            None
        };
        c.s.end()?;
        Ok(checked)
    };
    match run(&mut c) {
        Err(e) => Err(Rejection::one(Problem::new(
            ProblemClass::Structure,
            IssueType::Structure,
            format!("{} (at byte {})", e.kind.text(), e.offset),
            c.path,
        ))),
        Ok(Some(checked)) if c.problems.is_empty() => Ok(checked),
        Ok(_) => {
            if c.problems.is_empty() {
                c.problems.push(Problem::new(
                    ProblemClass::Structure,
                    IssueType::Structure,
                    "the body is not a FHIR resource",
                    String::new(),
                ));
            }
            Err(Rejection::new(c.problems))
        }
    }
}

impl<'a> Checker<'a, '_> {
    fn problem(
        &mut self,
        class: ProblemClass,
        code: IssueType,
        text: impl Into<Cow<'static, str>>,
        expression: String,
    ) {
        if self.problems.len() < self.cfg.max_problems {
            self.problems
                .push(Problem::new(class, code, text, expression));
        }
    }

    fn here(&mut self, class: ProblemClass, code: IssueType, text: impl Into<Cow<'static, str>>) {
        let at = self.path.clone();
        self.problem(class, code, text, at);
    }

    fn push_path(&mut self, segment: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(segment);
        len
    }

    fn push_index(&mut self, i: usize) -> usize {
        use std::fmt::Write;
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        len
    }

    /// A resource object at the current position; its path is the current path, or its type
    /// for the body itself.
    fn resource(&mut self, top: bool) -> JResult<Option<Checked>> {
        let mark = self.s.mark();
        let declared = self.find_resource_type()?;
        self.s.reset(mark);
        let Some(declared) = declared else {
            let at = if top {
                "Resource.resourceType".to_owned()
            } else {
                format!("{}.resourceType", self.path)
            };
            self.problem(
                ProblemClass::Structure,
                IssueType::Required,
                "the resource has no resourceType",
                at,
            );
            self.s.skip_value()?;
            return Ok(None);
        };
        let Some(rt) = ResourceType::from_name(&declared) else {
            let at = if top {
                "Resource.resourceType".to_owned()
            } else {
                format!("{}.resourceType", self.path)
            };
            self.problem(
                ProblemClass::Structure,
                IssueType::NotSupported,
                format!(
                    "resourceType {:?} is not an R4 resource type",
                    declared.chars().take(64).collect::<String>()
                ),
                at,
            );
            self.s.skip_value()?;
            return Ok(None);
        };
        let saved = self.path.len();
        if top {
            self.path.push_str(rt.as_str());
        }
        let bundle = rt == ResourceType::Bundle;
        self.bundles += usize::from(bundle);
        let id = self.object(rt.as_str(), Some(rt))?;
        self.bundles -= usize::from(bundle);
        self.path.truncate(saved);
        Ok(Some(Checked {
            resource_type: rt,
            id,
        }))
    }

    /// The first `resourceType` string of the object at the current position (the scanner is
    /// reset by the caller). Usually the first key, so this reads a few bytes only.
    fn find_resource_type(&mut self) -> JResult<Option<Cow<'a, str>>> {
        self.s.begin_object()?;
        let mut first = true;
        while let Some(key) = self.s.next_key(first)? {
            if key == "resourceType" && self.s.peek()? == Next::String {
                return self.s.string().map(Some);
            }
            if first {
                // Not first: look through the whole object once.
                first = false;
            }
            self.s.skip_value()?;
        }
        Ok(None)
    }

    /// Resolves a key of an object of `base` to its element and type: `gender`,
    /// `valueQuantity` (a variant of `value[x]`).
    fn resolve(
        &mut self,
        base: &str,
        name: &str,
    ) -> Option<(&'static ElementDef, &'static str, usize)> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        self.scratch.clear();
        self.scratch.push_str(base);
        self.scratch.push('.');
        self.scratch.push_str(name);
        if let Some(e) = tables::element(&self.scratch) {
            if e.is_choice() {
                return None;
            }
            return Some((e, e.types.first().copied().unwrap_or_default(), 0));
        }
        for (i, c) in name.char_indices().skip(1) {
            if !c.is_ascii_uppercase() {
                continue;
            }
            let (prefix, suffix) = name.split_at(i);
            self.scratch.truncate(base.len() + 1);
            self.scratch.push_str(prefix);
            self.scratch.push_str("[x]");
            if let Some(e) = tables::element(&self.scratch) {
                return e
                    .types
                    .iter()
                    .enumerate()
                    .find(|(_, t)| type_matches(t, suffix))
                    .map(|(v, t)| (e, *t, v));
            }
        }
        None
    }

    /// The keys of an object of `base` (a resource when `root` is given). Returns the
    /// resource's `id`.
    fn object(
        &mut self,
        base: &'static str,
        root: Option<ResourceType>,
    ) -> JResult<Option<String>> {
        self.s.begin_object()?;
        let frame = self.seen.len();
        let mut first = true;
        let mut resource_type_seen = false;
        let mut id = None;
        while let Some(key) = self.s.next_key(first)? {
            first = false;
            if let Some(rt) = root {
                if key == "resourceType" {
                    if resource_type_seen {
                        return Err(self.s.error(JsonErrorKind::DuplicateKey));
                    }
                    resource_type_seen = true;
                    // find_resource_type read the first copy; this is the same one.
                    if self.s.peek()? != Next::String || self.s.string()? != rt.as_str() {
                        self.here(
                            ProblemClass::Structure,
                            IssueType::Structure,
                            "resourceType must be a string",
                        );
                    }
                    continue;
                }
            }
            let (ext, name) = match key.strip_prefix('_') {
                Some(n) => (true, n),
                None => (false, key.as_ref()),
            };
            let Some((elem, ty, variant)) = self.resolve(base, name) else {
                let at = self.push_path(&key);
                self.here(
                    ProblemClass::Structure,
                    IssueType::Structure,
                    "unknown element",
                );
                self.path.truncate(at);
                self.s.skip_value()?;
                continue;
            };
            let mut choice_clash = false;
            for s in self.seen.get(frame..).unwrap_or_default() {
                if std::ptr::eq(s.elem, elem) {
                    if s.variant == variant && s.ext == ext {
                        return Err(self.s.error(JsonErrorKind::DuplicateKey));
                    }
                    choice_clash |= s.variant != variant;
                }
            }
            self.seen.push(Seen { elem, variant, ext });
            let kind = kind_of(elem, ty);
            if choice_clash {
                // Pointed at the choice itself (`Observation.value`), whichever variant came
                // second, so the verdict does not depend on key order.
                let stem = elem.name().trim_end_matches("[x]");
                let at = self.push_path(stem);
                self.here(
                    ProblemClass::Rule,
                    IssueType::Structure,
                    format!("only one type of {stem}[x] may be given"),
                );
                self.path.truncate(at);
            }
            let at = self.push_path(name);
            if ext {
                if matches!(kind, Kind::Primitive(_)) {
                    self.extension_of_primitive(elem)?;
                } else {
                    self.here(
                        ProblemClass::Structure,
                        IssueType::Structure,
                        "only primitive elements have _ extensions",
                    );
                    self.s.skip_value()?;
                }
            } else if root.is_some() && name == "id" && self.s.peek()? == Next::String {
                let value = self.s.string()?;
                if !primitives::id(value.as_bytes()) {
                    self.here(
                        ProblemClass::Rule,
                        IssueType::Value,
                        "the id is not a valid id",
                    );
                }
                id = Some(value.into_owned());
            } else {
                self.element_value(elem, kind)?;
            }
            self.path.truncate(at);
        }
        if first {
            self.here(
                ProblemClass::Structure,
                IssueType::Structure,
                "empty objects are not allowed",
            );
        } else {
            self.missing_required(base, frame);
        }
        self.seen.truncate(frame);
        Ok(id)
    }

    fn missing_required(&mut self, base: &'static str, frame: usize) {
        for child in tables::children(base) {
            if child.min == 0 {
                continue;
            }
            let present = self
                .seen
                .get(frame..)
                .unwrap_or_default()
                .iter()
                .any(|s| std::ptr::eq(s.elem, child));
            if !present {
                let at = self.push_path(child.name());
                self.here(
                    ProblemClass::Rule,
                    IssueType::Required,
                    "a required element is missing",
                );
                self.path.truncate(at);
            }
        }
    }

    fn element_value(&mut self, elem: &'static ElementDef, kind: Kind) -> JResult<()> {
        match self.s.peek()? {
            Next::Array if !repeats(elem) => {
                self.here(
                    ProblemClass::Structure,
                    IssueType::Structure,
                    "this element is single: an array is not allowed",
                );
                self.s.skip_value()
            }
            Next::Array => {
                self.s.begin_array()?;
                let mut i = 0;
                while self.s.next_item(i == 0)? {
                    let at = self.push_index(i);
                    if self.s.peek()? == Next::Null && matches!(kind, Kind::Primitive(_)) {
                        // Nulls keep a primitive array aligned with its `_x` array.
                        self.s.null()?;
                    } else {
                        self.single(elem, kind)?;
                    }
                    self.path.truncate(at);
                    i += 1;
                }
                if i == 0 {
                    self.here(
                        ProblemClass::Structure,
                        IssueType::Structure,
                        "empty arrays are not allowed",
                    );
                }
                Ok(())
            }
            _ if repeats(elem) => {
                self.here(
                    ProblemClass::Structure,
                    IssueType::Structure,
                    "this element repeats: its value must be an array",
                );
                self.s.skip_value()
            }
            _ => self.single(elem, kind),
        }
    }

    fn wrong_shape(&mut self, expected: &'static str, found: Next) -> JResult<()> {
        self.here(
            ProblemClass::Structure,
            IssueType::Structure,
            format!("expected {expected}, found {}", found.name()),
        );
        self.s.skip_value()
    }

    fn single(&mut self, elem: &'static ElementDef, kind: Kind) -> JResult<()> {
        let next = self.s.peek()?;
        match kind {
            Kind::Resource if next == Next::Object => self.resource(false).map(drop),
            Kind::Complex(base) if next == Next::Object => self.object(base, None).map(drop),
            Kind::Resource | Kind::Complex(_) => {
                if next == Next::Null {
                    self.null_value()
                } else {
                    self.wrong_shape("an object", next)
                }
            }
            Kind::Primitive(name) => self.primitive(elem, name, next),
        }
    }

    fn null_value(&mut self) -> JResult<()> {
        self.here(
            ProblemClass::Structure,
            IssueType::Structure,
            "null is not allowed here",
        );
        self.s.null()
    }

    fn primitive(
        &mut self,
        elem: &'static ElementDef,
        name: &'static str,
        next: Next,
    ) -> JResult<()> {
        match (primitives::shape(name), next) {
            (_, Next::Null) => self.null_value(),
            (primitives::Shape::Bool, Next::Bool) => self.s.boolean().map(drop),
            (primitives::Shape::Number, Next::Number) => {
                let n = self.s.number()?;
                if !primitives::valid(name, n) {
                    self.here(
                        ProblemClass::Rule,
                        IssueType::Value,
                        format!("the value is not a valid {name}"),
                    );
                }
                Ok(())
            }
            (primitives::Shape::String, Next::String) => {
                let value = self.s.string()?;
                self.string_value(elem, name, &value);
                Ok(())
            }
            (primitives::Shape::Bool, _) => self.wrong_shape("a boolean", next),
            (primitives::Shape::Number, _) => self.wrong_shape("a number", next),
            (primitives::Shape::String, _) => self.wrong_shape("a string", next),
        }
    }

    fn string_value(&mut self, elem: &'static ElementDef, name: &'static str, value: &str) {
        if value.is_empty() {
            self.here(
                ProblemClass::Structure,
                IssueType::Structure,
                "empty strings are not allowed",
            );
            return;
        }
        if !primitives::valid(name, value) {
            self.here(
                ProblemClass::Rule,
                IssueType::Value,
                format!("the value is not a valid {name}"),
            );
            return;
        }
        if let Some(vs) = elem.required_binding {
            if vs.complete && !vs.contains(value) {
                self.here(
                    ProblemClass::Rule,
                    IssueType::CodeInvalid,
                    format!(
                        "the code {:?} is not in the required value set {}",
                        value.chars().take(64).collect::<String>(),
                        vs.url
                    ),
                );
                return;
            }
        }
        if elem.path == "Reference.reference" {
            let ctx = RefContext {
                in_bundle: self.bundles > 0,
                bases: &self.cfg.reference_bases,
                any_absolute: self.cfg.any_absolute_reference,
            };
            if let Err(why) = references::check(value, ctx) {
                self.here(ProblemClass::Rule, IssueType::Value, why);
            }
        }
    }

    /// `_x`: an `Element` (id and extensions) for a single primitive, an array of them (with
    /// nulls) for a repeating one.
    fn extension_of_primitive(&mut self, elem: &'static ElementDef) -> JResult<()> {
        let next = self.s.peek()?;
        match next {
            Next::Object if !repeats(elem) => self.object("Element", None).map(drop),
            Next::Array if repeats(elem) => {
                self.s.begin_array()?;
                let mut i = 0;
                while self.s.next_item(i == 0)? {
                    let at = self.push_index(i);
                    match self.s.peek()? {
                        Next::Null => self.s.null()?,
                        Next::Object => {
                            self.object("Element", None)?;
                        }
                        other => self.wrong_shape("an object or null", other)?,
                    }
                    self.path.truncate(at);
                    i += 1;
                }
                if i == 0 {
                    self.here(
                        ProblemClass::Structure,
                        IssueType::Structure,
                        "empty arrays are not allowed",
                    );
                }
                Ok(())
            }
            other if repeats(elem) => self.wrong_shape("an array", other),
            other => self.wrong_shape("an object", other),
        }
    }
}
