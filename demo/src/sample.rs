//! Deterministic sample data: a small clinic's worth of FHIR R4 resources.
//!
//! [`load`] always creates the same well-known resources, whatever the seed:
//!
//! * `Patient/pat-1` (Amelia Hart) and `Patient/pat-2` (Noah Okafor), each with encounters,
//!   laboratory and vital-signs observations, conditions and medication requests;
//! * `Patient/pat-ssn` (Grace Lindqvist), the one patient carrying a US Social Security number
//!   (identifier system [`SSN_SYSTEM`]), for redaction demos;
//! * `Organization/org-1` … `org-3` and `Practitioner/prac-1` … `prac-5`.
//!
//! Patients `pat-3` … `pat-20` and everybody's clinical data beyond the fixed patients come
//! from a small xorshift generator seeded with `seed`, so the same seed gives the same data.
//! Names, numbers and addresses are made up.

mod clinical;

use crate::MemoryStore;
use serde_json::{json, Value};

/// The seed the gateway example and the tests use.
pub const DEFAULT_SEED: u64 = 0x5EED_F1E1_D0C5;

/// The identifier system of US Social Security numbers.
pub const SSN_SYSTEM: &str = "http://hl7.org/fhir/sid/us-ssn";

/// The identifier system of the sample hospital's medical record numbers.
pub const MRN_SYSTEM: &str = "http://hospital.example.org/fhir/sid/mrn";

/// The made-up SSN on `Patient/pat-ssn`.
pub const SAMPLE_SSN: &str = "999-12-3456";

const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// A tiny xorshift64* generator: deterministic, good enough for sample data.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // xorshift must not start at zero.
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// One of `items` (the default for an empty slice).
    pub(crate) fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        let len = u64::try_from(items.len()).unwrap_or(u64::MAX);
        if len == 0 {
            return T::default();
        }
        let i = usize::try_from(self.next_u64() % len).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const FEMALE: &[&str] = &[
    "Olivia", "Sofia", "Maya", "Chloe", "Hannah", "Leah", "Nora", "Ruth", "Elena", "Iris",
];
const MALE: &[&str] = &[
    "Liam", "Ethan", "Lucas", "Owen", "Caleb", "Isaac", "Julian", "Miles", "Theo", "Felix",
];
const FAMILY: &[&str] = &[
    "Nguyen",
    "Schmidt",
    "Garcia",
    "Kowalski",
    "Patel",
    "Johansson",
    "Moreau",
    "Tanaka",
    "Rossi",
    "Brennan",
    "Haddad",
    "Mensah",
    "Alvarez",
    "Fischer",
    "O'Neill",
    "Novak",
];
const STREETS: &[&str] = &[
    "Maple Street",
    "Harbor Road",
    "Elm Avenue",
    "Cedar Lane",
    "Birch Court",
    "Willow Way",
    "Oak Ridge Drive",
];
/// (city, state, ZIP prefix, phone area code)
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Springfield", "IL", "627", "217"),
    ("Madison", "WI", "537", "608"),
    ("Burlington", "VT", "054", "802"),
    ("Boulder", "CO", "803", "303"),
    ("Eugene", "OR", "974", "541"),
    ("Ithaca", "NY", "148", "607"),
];

/// Everything `clinical` needs to know about a patient.
#[derive(Clone, Debug)]
pub(crate) struct PatientInfo {
    pub(crate) id: String,
    /// The id suffix used in the patient's resources' ids (`1`, `ssn`, ...).
    pub(crate) tag: String,
    pub(crate) display: String,
    pub(crate) practitioner: String,
    pub(crate) organization: String,
    pub(crate) birth_year: i64,
}

struct Person<'a> {
    id: &'a str,
    given: &'a str,
    family: &'a str,
    gender: &'a str,
    birth: (i64, u32, u32),
    city: (&'a str, &'a str, &'a str, &'a str),
    street: (u64, &'a str),
    organization: u64,
    practitioner: u64,
    mrn: u64,
}

fn patient(p: &Person<'_>) -> Value {
    let (city, state, zip, area) = p.city;
    let (house, street) = p.street;
    let (y, m, d) = p.birth;
    let email = format!("{}.{}@example.org", p.given, p.family.replace('\'', "")).to_lowercase();
    json!({
        "resourceType": "Patient",
        "id": p.id,
        "identifier": [{
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]},
            "system": MRN_SYSTEM,
            "value": format!("MRN-{:06}", p.mrn)
        }],
        "active": true,
        "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        "telecom": [
            {"system": "phone", "value": format!("+1-{area}-555-01{:02}", p.mrn % 100), "use": "home"},
            {"system": "email", "value": email}
        ],
        "gender": p.gender,
        "birthDate": format!("{y:04}-{m:02}-{d:02}"),
        "address": [{
            "use": "home",
            "line": [format!("{house} {street}")],
            "city": city,
            "state": state,
            "postalCode": format!("{zip}{:02}", p.mrn % 97),
            "country": "US"
        }],
        "generalPractitioner": [{"reference": format!("Practitioner/prac-{}", p.practitioner)}],
        "managingOrganization": {"reference": format!("Organization/org-{}", p.organization)}
    })
}

fn organizations() -> Vec<Value> {
    let orgs = [
        (
            "Riverside General Hospital",
            "1234567893",
            "Springfield",
            "IL",
            "62701",
        ),
        (
            "Lakeside Family Clinic",
            "1457389201",
            "Madison",
            "WI",
            "53703",
        ),
        (
            "Northgate Clinical Laboratory",
            "1902837465",
            "Springfield",
            "IL",
            "62704",
        ),
    ];
    orgs.iter()
        .zip(1..)
        .map(|(&(name, npi, city, state, zip), n)| {
            json!({
                "resourceType": "Organization",
                "id": format!("org-{n}"),
                "identifier": [{"system": NPI_SYSTEM, "value": npi}],
                "active": true,
                "type": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                    "code": "prov",
                    "display": "Healthcare Provider"
                }]}],
                "name": name,
                "telecom": [{"system": "phone", "value": format!("+1-217-555-02{n:02}"), "use": "work"}],
                "address": [{"line": [format!("{} Main Street", 100 * n)], "city": city, "state": state, "postalCode": zip, "country": "US"}]
            })
        })
        .collect()
}

fn practitioners() -> Vec<Value> {
    let people = [
        ("Evelyn", "Carter", "female", "1679576722"),
        ("Marcus", "Webb", "male", "1538291047"),
        ("Priya", "Raman", "female", "1326048517"),
        ("Daniel", "Osei", "male", "1063497215"),
        ("Hana", "Sato", "female", "1790836254"),
    ];
    people
        .iter()
        .zip(1..)
        .map(|(&(given, family, gender, npi), n)| {
            json!({
                "resourceType": "Practitioner",
                "id": format!("prac-{n}"),
                "identifier": [{"system": NPI_SYSTEM, "value": npi}],
                "active": true,
                "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Dr."]}],
                "telecom": [{"system": "phone", "value": format!("+1-217-555-03{n:02}"), "use": "work"}],
                "gender": gender
            })
        })
        .collect()
}

/// Loads the sample data into `store` and returns how many resources were stored.
///
/// Loading twice stores new versions of the same resources.
pub fn load(store: &MemoryStore, seed: u64) -> usize {
    let mut stored = 0;
    let mut put = |resource: Value| {
        if store.put(resource).is_ok() {
            stored += 1;
        }
    };
    organizations().into_iter().for_each(&mut put);
    practitioners().into_iter().for_each(&mut put);

    let fixed = [
        Person {
            id: "pat-1",
            given: "Amelia",
            family: "Hart",
            gender: "female",
            birth: (1984, 3, 12),
            city: ("Springfield", "IL", "627", "217"),
            street: (42, "Maple Street"),
            organization: 1,
            practitioner: 1,
            mrn: 100_001,
        },
        Person {
            id: "pat-2",
            given: "Noah",
            family: "Okafor",
            gender: "male",
            birth: (1971, 11, 2),
            city: ("Madison", "WI", "537", "608"),
            street: (7, "Harbor Road"),
            organization: 2,
            practitioner: 2,
            mrn: 100_002,
        },
        Person {
            id: "pat-ssn",
            given: "Grace",
            family: "Lindqvist",
            gender: "female",
            birth: (1990, 7, 21),
            city: ("Burlington", "VT", "054", "802"),
            street: (318, "Cedar Lane"),
            organization: 1,
            practitioner: 3,
            mrn: 100_003,
        },
    ];
    for (n, person) in fixed.iter().enumerate() {
        let mut resource = patient(person);
        if person.id == "pat-ssn" {
            if let Some(Value::Array(ids)) = resource.get_mut("identifier") {
                ids.push(json!({
                    "use": "official",
                    "type": {"coding": [{"system": V2_0203, "code": "SS", "display": "Social Security number"}]},
                    "system": SSN_SYSTEM,
                    "value": SAMPLE_SSN
                }));
            }
        }
        put(resource);
        let info = PatientInfo {
            id: person.id.to_owned(),
            tag: person.id.trim_start_matches("pat-").to_owned(),
            display: format!("{} {}", person.given, person.family),
            practitioner: format!("Practitioner/prac-{}", person.practitioner),
            organization: format!("Organization/org-{}", person.organization),
            birth_year: person.birth.0,
        };
        // The fixed patients' records don't depend on the seed.
        let mut rng = Rng::new(0xF1ED_0000 + n as u64);
        let plan = clinical::Plan::fixed(person.id);
        clinical::records(&info, &plan, &mut rng)
            .into_iter()
            .for_each(&mut put);
    }

    let mut rng = Rng::new(seed);
    for n in 3..=20u64 {
        let female = rng.chance(50);
        let given = rng.pick(if female { FEMALE } else { MALE });
        let family = rng.pick(FAMILY);
        let birth_year = 1940 + i64::try_from(rng.range(0, 65)).unwrap_or(0);
        let id = format!("pat-{n}");
        let person = Person {
            id: &id,
            given,
            family,
            gender: if female { "female" } else { "male" },
            birth: (
                birth_year,
                u32::try_from(rng.range(1, 12)).unwrap_or(1),
                u32::try_from(rng.range(1, 28)).unwrap_or(1),
            ),
            city: rng.pick(CITIES),
            street: (rng.range(1, 999), rng.pick(STREETS)),
            organization: rng.range(1, 2),
            practitioner: rng.range(1, 5),
            mrn: 100_000 + n * 37,
        };
        put(patient(&person));
        let info = PatientInfo {
            id: id.clone(),
            tag: n.to_string(),
            display: format!("{given} {family}"),
            practitioner: format!("Practitioner/prac-{}", person.practitioner),
            organization: format!("Organization/org-{}", person.organization),
            birth_year,
        };
        let plan = clinical::Plan::random(&mut rng);
        clinical::records(&info, &plan, &mut rng)
            .into_iter()
            .for_each(&mut put);
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = MemoryStore::new();
        let b = MemoryStore::new();
        let n = load(&a, DEFAULT_SEED);
        assert_eq!(load(&b, DEFAULT_SEED), n);
        assert!((200..=800).contains(&n), "{n} resources");
        let strip = |mut v: Value| {
            if let Some(obj) = v.as_object_mut() {
                obj.remove("meta");
            }
            v
        };
        for ty in [
            "Patient",
            "Observation",
            "Encounter",
            "Condition",
            "MedicationRequest",
        ] {
            let xs: Vec<Value> = a.all(ty).into_iter().map(strip).collect();
            let ys: Vec<Value> = b.all(ty).into_iter().map(strip).collect();
            assert_eq!(xs, ys, "{ty}");
        }
        assert_eq!(a.count("Patient"), 21);
        let ssn = a.read("Patient", "pat-ssn").unwrap();
        assert!(ssn.to_string().contains(SSN_SYSTEM));
        let with_ssn = a
            .all("Patient")
            .iter()
            .filter(|p| p.to_string().contains(SSN_SYSTEM))
            .count();
        assert_eq!(with_ssn, 1);
    }

    #[test]
    fn fixed_patients_ignore_the_seed() {
        let a = MemoryStore::new();
        let b = MemoryStore::new();
        load(&a, 1);
        load(&b, 2);
        let mine = |s: &MemoryStore| {
            s.all("Observation")
                .into_iter()
                .filter(|o| o["subject"]["reference"] == "Patient/pat-1")
                .map(|o| o["valueQuantity"].clone())
                .collect::<Vec<_>>()
        };
        assert!(!mine(&a).is_empty());
        assert_eq!(mine(&a), mine(&b));
    }
}
