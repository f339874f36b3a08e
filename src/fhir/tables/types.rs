//! The row types of the generated FHIR R4 tables.

use super::ResourceType;

/// The type of a search parameter (`SearchParameter.type`, FHIR R4 §3.1.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchParamType {
    /// `number`: a decimal or integer value.
    Number,
    /// `date`: a date, date-time or period.
    Date,
    /// `string`: a simple string, matched case- and accent-insensitively.
    String,
    /// `token`: a code or identifier, `[system]|[code]`.
    Token,
    /// `reference`: a reference to another resource.
    Reference,
    /// `composite`: a combination of other parameters, `a$b`.
    Composite,
    /// `quantity`: a number with a unit, `[number]|[system]|[code]`.
    Quantity,
    /// `uri`: a URI, matched exactly (or with `:above`/`:below`).
    Uri,
    /// `special`: handled in a way of its own (`_filter`, `_has`, `near`, ...).
    Special,
}

impl SearchParamType {
    /// The code the specification uses for this type (`"token"`, `"reference"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            SearchParamType::Number => "number",
            SearchParamType::Date => "date",
            SearchParamType::String => "string",
            SearchParamType::Token => "token",
            SearchParamType::Reference => "reference",
            SearchParamType::Composite => "composite",
            SearchParamType::Quantity => "quantity",
            SearchParamType::Uri => "uri",
            SearchParamType::Special => "special",
        }
    }
}

/// A search parameter of one resource type (or of all of them), from a SearchParameter resource
/// of the R4 core package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchParamDef {
    /// The name used in URLs, e.g. `"subject"`.
    pub code: &'static str,
    /// The parameter type.
    pub kind: SearchParamType,
    /// The full FHIRPath expression of the SearchParameter (for every base it has), `""` if none.
    pub expression: &'static str,
    /// The element paths searched on this resource type, relative to the resource and derived from
    /// the expression (`"subject"`, `"participant.individual"`); `.where(...)` filters and type
    /// casts are left out. Empty when the expression is not a plain path.
    pub paths: &'static [&'static str],
    /// The resource types a reference parameter may point to, sorted.
    pub targets: &'static [ResourceType],
    /// Whether a reference parameter may point to any resource type (in which case `targets`
    /// lists every type a reference can point to, if the specification spells them out).
    pub any_target: bool,
    /// The modifiers the SearchParameter declares (`SearchParameter.modifier`), e.g. `"missing"`.
    pub modifiers: &'static [&'static str],
    /// The SearchParameter's canonical URL; `""` for `_has`, `_list` and `_type`, which the
    /// search page defines without a SearchParameter resource.
    pub url: &'static str,
}

/// A parameter that links a resource type to the Patient compartment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompartmentParam {
    /// The search parameter code (e.g. `"subject"`), or `"{def}"` for the Patient resource itself
    /// (the compartment's own patient, whose `id` is the compartment id).
    pub code: &'static str,
    /// The element paths that hold the reference to the patient (the search parameter's paths),
    /// relative to the resource; `["id"]` for `{def}`.
    pub paths: &'static [&'static str],
}

/// The maximum cardinality of an element (`ElementDefinition.max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Max {
    /// `*`: any number of repetitions.
    Unbounded,
    /// At most this many repetitions.
    Count(u32),
}

impl Max {
    /// Whether `n` repetitions are allowed by this maximum.
    pub const fn allows(self, n: usize) -> bool {
        match self {
            Max::Unbounded => true,
            Max::Count(max) => n <= max as usize,
        }
    }
}

/// One element of a StructureDefinition snapshot (a resource or a data type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementDef {
    /// The element path, e.g. `"Patient.contact.name"`; choice elements end in `[x]`
    /// (`"Observation.value[x]"`).
    pub path: &'static str,
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality.
    pub max: Max,
    /// The type codes as the snapshot gives them: `"string"`, `"HumanName"`, `"Reference"`,
    /// `"BackboneElement"`, `"http://hl7.org/fhirpath/System.String"`, ... Empty for a root
    /// element and for an element defined by `content_reference`.
    pub types: &'static [&'static str],
    /// Where the element's definition is, for recursive elements: `"#Questionnaire.item"` for
    /// `Questionnaire.item.item`.
    pub content_reference: Option<&'static str>,
    /// The value set of a `required` binding.
    pub required_binding: Option<&'static ValueSetDef>,
    /// Whether the element is a modifier (`isModifier`).
    pub is_modifier: bool,
    /// Whether the element is part of the summary (`isSummary`).
    pub is_summary: bool,
}

impl ElementDef {
    /// The element's own name: the last segment of the path (`"value[x]"`).
    pub fn name(&self) -> &'static str {
        let path: &'static str = self.path;
        path.rsplit('.').next().unwrap_or(path)
    }

    /// Whether the element is a choice of types (`value[x]`).
    pub fn is_choice(&self) -> bool {
        self.path.ends_with("[x]")
    }
}

/// The codes of a value set bound with strength `required`, expanded from the R4 core package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSetDef {
    /// The value set's canonical URL (without version).
    pub url: &'static str,
    /// The codes, sorted and without duplicates (codes of every included system together).
    pub codes: &'static [&'static str],
    /// Whether `codes` is the whole value set. It is not when the value set includes codes the
    /// package cannot enumerate (UCUM, MIME types, a code system not in the package, filters);
    /// only complete value sets should be enforced.
    pub complete: bool,
}

impl ValueSetDef {
    /// Whether `code` is one of [`codes`](Self::codes).
    pub fn contains(&self, code: &str) -> bool {
        self.codes.binary_search(&code).is_ok()
    }
}

/// A primitive data type and the regex its values must match (`ElementDefinition.type.extension`
/// `http://hl7.org/fhir/StructureDefinition/regex` on `<type>.value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimitiveDef {
    /// The type name, e.g. `"id"`, `"dateTime"`.
    pub name: &'static str,
    /// The regex (to be matched against the whole value), if the specification gives one. The
    /// specification's `\s` means ASCII whitespace.
    pub regex: Option<&'static str>,
}
