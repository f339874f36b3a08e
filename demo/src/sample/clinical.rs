//! One patient's clinical record: encounters, observations, conditions, medication requests.

use super::{PatientInfo, Rng};
use crate::time::{civil_from_days, days_from_civil};
use serde_json::{json, Value};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const LAB_ORG: &str = "Organization/org-3";

/// (LOINC code, display, unit, UCUM code, low, high, tenths?) — values in tenths when true.
type Measure = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u64,
    u64,
    bool,
);

const VITALS: &[Measure] = &[
    ("29463-7", "Body weight", "kg", "kg", 500, 1100, true),
    (
        "8867-4",
        "Heart rate",
        "beats/minute",
        "/min",
        55,
        100,
        false,
    ),
    ("8310-5", "Body temperature", "Cel", "Cel", 361, 379, true),
    (
        "9279-1",
        "Respiratory rate",
        "breaths/minute",
        "/min",
        12,
        20,
        false,
    ),
];

/// Labs, with the reference range (low, high) in the same unit.
const LABS: &[(Measure, f64, f64)] = &[
    (
        (
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            "mg/dL",
            "mg/dL",
            70,
            180,
            false,
        ),
        70.0,
        99.0,
    ),
    (
        (
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "g/dL",
            "g/dL",
            110,
            170,
            true,
        ),
        12.0,
        17.5,
    ),
    (
        (
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            "mg/dL",
            "mg/dL",
            6,
            15,
            true,
        ),
        0.6,
        1.3,
    ),
    (
        (
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            "%",
            48,
            95,
            true,
        ),
        4.0,
        5.6,
    ),
    (
        (
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "mmol/L",
            "mmol/L",
            35,
            52,
            true,
        ),
        3.5,
        5.1,
    ),
];

/// (SNOMED code, display, RxNorm code, medication display, dosage text)
type Problem = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const PROBLEMS: &[Problem] = &[
    (
        "44054006",
        "Diabetes mellitus type 2 (disorder)",
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "Take 1 tablet by mouth once daily with the evening meal",
    ),
    (
        "38341003",
        "Hypertensive disorder, systemic arterial (disorder)",
        "314076",
        "lisinopril 10 MG Oral Tablet",
        "Take 1 tablet by mouth once daily",
    ),
    (
        "195967001",
        "Asthma (disorder)",
        "745679",
        "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
        "Inhale 2 puffs every 4 to 6 hours as needed for wheezing",
    ),
    (
        "55822004",
        "Hyperlipidemia (disorder)",
        "259255",
        "Atorvastatin 80 MG Oral Tablet",
        "Take 1 tablet by mouth once daily at bedtime",
    ),
    (
        "40055000",
        "Chronic sinusitis (disorder)",
        "308182",
        "Amoxicillin 250 MG Oral Capsule",
        "Take 1 capsule by mouth three times daily for 10 days",
    ),
];

/// What a patient's record contains.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    encounters: u64,
    /// Fixed encounter dates (random ones when empty).
    dates: Vec<(i64, u32, u32)>,
    labs_per_encounter: usize,
    problems: Vec<usize>,
    medications: bool,
}

impl Plan {
    /// The fixed patients: two encounters, three labs each, fixed problems.
    pub(crate) fn fixed(id: &str) -> Plan {
        let (problems, dates) = match id {
            "pat-1" => (vec![0, 1], vec![(2023, 6, 14), (2024, 5, 3)]),
            "pat-2" => (vec![2], vec![(2023, 9, 20), (2024, 2, 11)]),
            _ => (vec![3], vec![(2024, 3, 5), (2025, 1, 15)]),
        };
        Plan {
            encounters: 2,
            dates,
            labs_per_encounter: 3,
            problems,
            medications: true,
        }
    }

    pub(crate) fn random(rng: &mut Rng) -> Plan {
        let count = usize::try_from(rng.range(0, 2)).unwrap_or(0);
        Plan {
            encounters: rng.range(1, 3),
            dates: Vec::new(),
            labs_per_encounter: usize::try_from(rng.range(2, 3)).unwrap_or(2),
            problems: distinct(rng, PROBLEMS.len(), count),
            medications: rng.chance(80),
        }
    }
}

/// `k` distinct indices below `n`.
fn distinct(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + usize::try_from(rng.range(0, (n - i - 1) as u64)).unwrap_or(0);
        all.swap(i, j.min(n - 1));
    }
    all.truncate(k.min(n));
    all
}

fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `days` since the epoch plus `minutes` into the day, as a FHIR dateTime.
fn date_time(days: i64, minutes: i64) -> String {
    format!("{}T{:02}:{:02}:00Z", date(days), minutes / 60, minutes % 60)
}

fn quantity(rng: &mut Rng, m: &Measure) -> Value {
    let &(_, _, unit, code, lo, hi, tenths) = m;
    let n = rng.range(lo, hi);
    let value = if tenths {
        json!(n as f64 / 10.0)
    } else {
        json!(n)
    };
    json!({"value": value, "unit": unit, "system": UCUM, "code": code})
}

struct ObsContext<'a> {
    patient: &'a PatientInfo,
    encounter: &'a str,
    when: String,
}

fn observation(
    id: String,
    ctx: &ObsContext<'_>,
    category: &str,
    code: &str,
    display: &str,
) -> Value {
    let category_display = if category == "laboratory" {
        "Laboratory"
    } else {
        "Vital Signs"
    };
    let mut performer = vec![json!({"reference": ctx.patient.practitioner})];
    if category == "laboratory" {
        performer.push(json!({"reference": LAB_ORG}));
    }
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category, "display": category_display}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": format!("Patient/{}", ctx.patient.id), "display": ctx.patient.display},
        "encounter": {"reference": ctx.encounter},
        "effectiveDateTime": ctx.when,
        "performer": performer
    })
}

fn set(resource: &mut Value, key: &str, value: Value) {
    if let Some(obj) = resource.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
}

/// The patient's resources, in an order that keeps references pointing backwards.
pub(crate) fn records(p: &PatientInfo, plan: &Plan, rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    let start = days_from_civil(2023, 1, 9);
    let mut days: Vec<i64> = if plan.dates.is_empty() {
        (0..plan.encounters)
            .map(|_| start + i64::try_from(rng.range(0, 880)).unwrap_or(0))
            .collect()
    } else {
        plan.dates
            .iter()
            .map(|&(y, m, d)| days_from_civil(y, m, d))
            .collect()
    };
    days.sort_unstable();
    let subject = json!({"reference": format!("Patient/{}", p.id), "display": p.display});
    let mut obs_n = 0;
    let mut first_encounter: Option<(String, String)> = None;
    for (k, &day) in days.iter().enumerate() {
        let encounter_id = format!("enc-{}-{}", p.tag, k + 1);
        let begin = i64::try_from(rng.range(8 * 12, 16 * 12)).unwrap_or(96) * 5;
        out.push(json!({
            "resourceType": "Encounter",
            "id": encounter_id,
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
                "display": "ambulatory"
            },
            "type": [{"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up (procedure)"}]}],
            "subject": subject,
            "participant": [{
                "type": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "PPRF",
                    "display": "primary performer"
                }]}],
                "individual": {"reference": p.practitioner}
            }],
            "period": {"start": date_time(day, begin), "end": date_time(day, begin + 30)},
            "serviceProvider": {"reference": p.organization}
        }));
        let reference = format!("Encounter/{encounter_id}");
        if first_encounter.is_none() {
            first_encounter = Some((reference.clone(), date_time(day, begin)));
        }
        let vitals = ObsContext {
            patient: p,
            encounter: &reference,
            when: date_time(day, begin + 5),
        };
        for m in VITALS {
            obs_n += 1;
            let mut obs = observation(
                format!("obs-{}-{obs_n}", p.tag),
                &vitals,
                "vital-signs",
                m.0,
                m.1,
            );
            set(&mut obs, "valueQuantity", quantity(rng, m));
            out.push(obs);
        }
        obs_n += 1;
        let mut bp = observation(
            format!("obs-{}-{obs_n}", p.tag),
            &vitals,
            "vital-signs",
            "85354-9",
            "Blood pressure panel with all children optional",
        );
        let component = |code: &str, display: &str, value: u64| {
            json!({
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
            })
        };
        let systolic = rng.range(105, 150);
        let diastolic = rng.range(65, 95);
        set(
            &mut bp,
            "component",
            json!([
                component("8480-6", "Systolic blood pressure", systolic),
                component("8462-4", "Diastolic blood pressure", diastolic)
            ]),
        );
        out.push(bp);
        let labs = ObsContext {
            patient: p,
            encounter: &reference,
            when: date_time(day, begin + 20),
        };
        for i in distinct(rng, LABS.len(), plan.labs_per_encounter) {
            let Some((m, low, high)) = LABS.get(i) else {
                continue;
            };
            obs_n += 1;
            let mut obs = observation(
                format!("obs-{}-{obs_n}", p.tag),
                &labs,
                "laboratory",
                m.0,
                m.1,
            );
            set(
                &mut obs,
                "issued",
                json!(format!("{}T09:00:00.000Z", date(day + 1))),
            );
            set(&mut obs, "valueQuantity", quantity(rng, m));
            set(
                &mut obs,
                "referenceRange",
                json!([{
                    "low": {"value": low, "unit": m.2, "system": UCUM, "code": m.3},
                    "high": {"value": high, "unit": m.2, "system": UCUM, "code": m.3}
                }]),
            );
            out.push(obs);
        }
    }
    let Some((encounter, recorded)) = first_encounter else {
        return out;
    };
    for (k, &problem) in plan.problems.iter().enumerate() {
        let Some(&(snomed, display, rxnorm, medication, dosage)) = PROBLEMS.get(problem) else {
            continue;
        };
        let condition_id = format!("cond-{}-{}", p.tag, k + 1);
        let onset_year =
            (p.birth_year + 18).clamp(2000, 2022) + i64::try_from(rng.range(0, 3)).unwrap_or(0);
        let onset = days_from_civil(onset_year.min(2022), 1, 1)
            + i64::try_from(rng.range(0, 360)).unwrap_or(0);
        out.push(json!({
            "resourceType": "Condition",
            "id": condition_id,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": "problem-list-item",
                "display": "Problem List Item"
            }]}],
            "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display}], "text": display},
            "subject": subject,
            "encounter": {"reference": encounter},
            "onsetDateTime": date(onset),
            "recordedDate": recorded,
            "asserter": {"reference": p.practitioner}
        }));
        if !plan.medications {
            continue;
        }
        out.push(json!({
            "resourceType": "MedicationRequest",
            "id": format!("medreq-{}-{}", p.tag, k + 1),
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": rxnorm, "display": medication}],
                "text": medication
            },
            "subject": subject,
            "encounter": {"reference": encounter},
            "authoredOn": recorded,
            "requester": {"reference": p.practitioner},
            "reasonReference": [{"reference": format!("Condition/{condition_id}")}],
            "dosageInstruction": [{"sequence": 1, "text": dosage}]
        }));
    }
    out
}
