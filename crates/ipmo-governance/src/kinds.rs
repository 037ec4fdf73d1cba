//! The kinds of programme record and their fields. Every kind is declared here once; the store,
//! the forms, the CSV export, the JSON API and the validation all read these declarations, so a
//! new kind is a new entry rather than a new table, form and endpoint.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a field holds, which decides its form control, its validation and its JSON type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Paragraphs.
    LongText,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A quarter, `YYYY-Qn`.
    Quarter,
    /// A 1–5 score (risk likelihood and consequence, stakeholder power and interest).
    Score,
    /// A number from `min` to `max` (whole-time equivalents, targets).
    Number {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// A whole number from `min` to `max` (headcounts, places).
    Integer {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// One of a fixed list.
    Choice(&'static [&'static str]),
    /// The id of a record of the named kind.
    Ref(&'static str),
    /// The id of a measure in the measure library.
    Measure,
    /// Measure ids separated by commas.
    MeasureList,
    /// An organisation code known to the dashboard (practice to England).
    Org,
    /// A calendar month, `YYYY-MM` (a scheme's start and baseline).
    Month,
    /// BNF code prefixes separated by commas (the products a scheme or horizon item concerns).
    BnfCodes,
}

/// One field of a kind.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Key in the record's JSON and the form's parameter name.
    pub name: &'static str,
    /// Label shown beside the control and as the column heading.
    pub label: &'static str,
    /// A line of help under the label (empty for none).
    pub hint: &'static str,
    /// What it holds.
    pub ty: FieldType,
    /// Whether a record needs it.
    pub required: bool,
}

/// A kind of programme record.
#[derive(Debug)]
pub struct Kind {
    /// Stable identifier, used in URLs, the API and the store.
    pub id: &'static str,
    /// Singular name for people.
    pub title: &'static str,
    /// Plural name for people.
    pub plural: &'static str,
    /// Prefix of the record's reference (`RSK-12`).
    pub prefix: &'static str,
    /// Which part of the governance workspace it belongs to.
    pub area: Area,
    /// What the kind is for, shown on its list page.
    pub description: &'static str,
    /// The field that names a record in lists and links.
    pub name_field: &'static str,
    /// Fields shown as columns of the list page.
    pub columns: &'static [&'static str],
    /// Every field, in form order.
    pub fields: &'static [Field],
}

/// The parts of the governance workspace, in the order the navigation shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// Organisations, committees, people and how they relate.
    SystemMap,
    /// Aims, workstreams, milestones and the national opportunities chosen.
    Strategy,
    /// Stakeholders and engagement.
    Stakeholders,
    /// Risks, their actions and watched measures.
    Risk,
    /// Performance standards and sources of assurance.
    Assurance,
    /// Establishment, staff in post and training.
    Workforce,
    /// Case studies and the leadership group's decisions.
    Evidence,
    /// The cost-efficiency programme: savings schemes and the horizon scan.
    Value,
}

impl Area {
    /// Every area in navigation order.
    pub const ALL: [Area; 8] = [
        Area::SystemMap,
        Area::Strategy,
        Area::Stakeholders,
        Area::Risk,
        Area::Assurance,
        Area::Workforce,
        Area::Value,
        Area::Evidence,
    ];

    /// The area's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Area::SystemMap => "System map",
            Area::Strategy => "Strategy and plans",
            Area::Stakeholders => "Stakeholders",
            Area::Risk => "Risk register",
            Area::Assurance => "Assurance framework",
            Area::Workforce => "Workforce",
            Area::Evidence => "Case studies and decisions",
            Area::Value => "Medicines value",
        }
    }
}

const fn field(name: &'static str, label: &'static str, ty: FieldType, required: bool) -> Field {
    Field { name, label, hint: "", ty, required }
}

const fn hinted(name: &'static str, label: &'static str, hint: &'static str, ty: FieldType, required: bool) -> Field {
    Field { name, label, hint, ty, required }
}

/// Sectors of an integrated care system, for risks, stakeholders and workforce.
pub const SECTORS: &[&str] = &[
    "ICB",
    "General practice and PCNs",
    "Community pharmacy",
    "Acute trust",
    "Mental health trust",
    "Community services",
    "Care homes",
    "System-wide",
];

/// Status of a piece of work.
pub const WORK_STATUS: &[&str] = &["Not started", "In progress", "Complete", "Paused"];
/// Red, amber, green as typed by an owner (performance standards compute theirs instead).
pub const RAG: &[&str] = &["Green", "Amber", "Red"];
/// Which plan on a page a workstream belongs to.
pub const PLANS: &[&str] = &["National priorities", "Workforce"];
/// What a risk watching a measure reacts to.
pub const TRIGGERS: &[&str] = &[
    "SPC special cause of concern",
    "Assurance: consistently fails target",
    "Worst decile nationally",
    "CUSUM change for the worse",
];
/// Lines of defence for sources of assurance.
pub const LINES: &[&str] = &["1st line: management", "2nd line: oversight", "3rd line: independent"];
/// Workforce roles.
pub const ROLES: &[&str] = &[
    "Pharmacist",
    "Pharmacist independent prescriber",
    "Consultant pharmacist",
    "Pharmacy technician",
    "PCN clinical pharmacist (ARRS)",
    "PCN pharmacy technician (ARRS)",
    "Foundation trainee pharmacist",
    "Pharmacy support worker",
];
/// Training programmes of the pharmacy pipeline.
pub const PROGRAMMES: &[&str] = &[
    "Foundation trainee pharmacist places",
    "Independent prescribing course",
    "Designated supervisors",
    "Designated prescribing practitioners",
    "Trainee pharmacy technicians",
];

/// How a savings scheme saves, which decides how its saving is measured.
pub const SCHEME_TYPES: &[&str] = &["Switch", "Reduction", "Price per unit"];
/// What a horizon-scan item is about.
pub const HORIZON_CATEGORIES: &[&str] = &[
    "Patent expiry and generic launch",
    "Biosimilar launch",
    "NICE technology appraisal",
    "Drug Tariff category change",
    "Drug Tariff price change",
    "Price concession",
    "Discontinuation",
    "Shortage",
    "Growing use",
    "New product",
];
/// Where a horizon-scan item stands.
pub const HORIZON_STATUS: &[&str] = &["Watching", "Planning a response", "Scheme started", "Closed"];

/// Most BNF prefixes one field may list (each is a search of the prescribing index).
pub const MAX_BNF_CODES: usize = 50;

use FieldType::*;

/// Every kind of record, grouped by area.
pub static KINDS: &[Kind] = &[
    Kind {
        id: "system-org",
        title: "System organisation",
        plural: "System organisations",
        prefix: "ORG",
        area: Area::SystemMap,
        description: "The organisations of the integrated care system and its neighbours, and where each sits.",
        name_field: "name",
        columns: &["name", "org_type", "ods_code", "parent"],
        fields: &[
            field("name", "Name", Text, true),
            field(
                "org_type",
                "Type",
                Choice(&[
                    "Integrated care board",
                    "Acute trust",
                    "Mental health trust",
                    "Community trust",
                    "Primary care network",
                    "General practice",
                    "Community pharmacy",
                    "Care home",
                    "Local authority",
                    "Neighbouring system",
                    "Other",
                ]),
                true,
            ),
            hinted("ods_code", "ODS code", "The organisation's NHS ODS code, if it has one.", Text, false),
            hinted("parent", "Part of", "The organisation this one sits within.", Ref("system-org"), false),
            field("pharmacy_link", "How pharmacy works with it", LongText, false),
        ],
    },
    Kind {
        id: "person",
        title: "Person",
        plural: "People and roles",
        prefix: "PER",
        area: Area::SystemMap,
        description: "The pharmacy and medicines leadership: roles, descriptions and lines of accountability.",
        name_field: "name",
        columns: &["name", "role_title", "organisation", "reports_to"],
        fields: &[
            field("name", "Name", Text, true),
            field("role_title", "Role", Text, true),
            field("organisation", "Organisation", Ref("system-org"), false),
            hinted("reports_to", "Reports to", "Line management.", Ref("person"), false),
            hinted(
                "accountable_to",
                "Accountable to",
                "Professional or programme accountability, where it differs.",
                Ref("person"),
                false,
            ),
            field("role_description", "Role description", LongText, false),
        ],
    },
    Kind {
        id: "committee",
        title: "Committee or group",
        plural: "Committees and groups",
        prefix: "GRP",
        area: Area::SystemMap,
        description: "The IPMO leadership group, the board sponsor, the medicines optimisation committee, the APC, the AMS and medication safety groups, RMOC links.",
        name_field: "name",
        columns: &["name", "group_type", "chair", "reports_to", "cadence"],
        fields: &[
            field("name", "Name", Text, true),
            field(
                "group_type",
                "Type",
                Choice(&["Board", "Leadership group", "Committee", "Sub-group", "Network", "Regional link"]),
                true,
            ),
            field("purpose", "Purpose", LongText, false),
            field("chair", "Chair", Ref("person"), false),
            field("reports_to", "Reports to", Ref("committee"), false),
            field("cadence", "Meets", Choice(&["Weekly", "Fortnightly", "Monthly", "Bi-monthly", "Quarterly"]), false),
        ],
    },
    Kind {
        id: "membership",
        title: "Membership",
        plural: "Memberships",
        prefix: "MEM",
        area: Area::SystemMap,
        description: "Who sits on which committee or group, and in what capacity.",
        name_field: "person",
        columns: &["person", "committee", "capacity"],
        fields: &[
            field("person", "Person", Ref("person"), true),
            field("committee", "Committee or group", Ref("committee"), true),
            field("capacity", "Capacity", Choice(&["Chair", "Vice-chair", "Member", "Secretary", "Attendee"]), true),
        ],
    },
    Kind {
        id: "aim",
        title: "Aim",
        plural: "Aims",
        prefix: "AIM",
        area: Area::Strategy,
        description: "The strategy's aims, each with an owner and the measures that evidence it.",
        name_field: "title",
        columns: &["title", "owner", "status", "rag"],
        fields: &[
            field("title", "Aim", Text, true),
            field("description", "Description", LongText, false),
            field("owner", "Owner", Text, true),
            field("status", "Status", Choice(WORK_STATUS), true),
            field("rag", "RAG", Choice(RAG), false),
            hinted(
                "measures",
                "Measures",
                "Measure ids separated by commas, e.g. broad_spectrum, doacs.",
                MeasureList,
                false,
            ),
        ],
    },
    Kind {
        id: "opportunity",
        title: "National opportunity",
        plural: "National opportunities chosen",
        prefix: "OPP",
        area: Area::Strategy,
        description: "The national medicines optimisation opportunities the system chose (at least five of sixteen), each tied to its measures.",
        name_field: "title",
        columns: &["number", "title", "lead", "measures"],
        fields: &[
            field("number", "Opportunity number", Integer { min: 1, max: 16 }, true),
            field("title", "Opportunity", Text, true),
            field("lead", "Lead", Text, true),
            field("measures", "Measures", MeasureList, false),
            field("rationale", "Why the system chose it", LongText, false),
        ],
    },
    Kind {
        id: "workstream",
        title: "Workstream",
        plural: "Workstreams",
        prefix: "WS",
        area: Area::Strategy,
        description: "Priorities and workstreams under each aim, on one of the two plans on a page.",
        name_field: "title",
        columns: &["title", "plan", "aim", "owner", "rag"],
        fields: &[
            field("title", "Workstream", Text, true),
            field("plan", "Plan on a page", Choice(PLANS), true),
            field("aim", "Aim", Ref("aim"), true),
            field("owner", "Owner", Text, true),
            field("description", "What will be delivered", LongText, false),
            field("start", "Start", Date, false),
            field("end", "End", Date, false),
            field("rag", "RAG", Choice(RAG), false),
            field("measures", "Measures", MeasureList, false),
        ],
    },
    Kind {
        id: "milestone",
        title: "Milestone",
        plural: "Milestones",
        prefix: "MS",
        area: Area::Strategy,
        description: "Dated milestones of each workstream.",
        name_field: "title",
        columns: &["title", "workstream", "due", "status", "rag"],
        fields: &[
            field("title", "Milestone", Text, true),
            field("workstream", "Workstream", Ref("workstream"), true),
            field("owner", "Owner", Text, true),
            field("due", "Due", Date, true),
            field("status", "Status", Choice(WORK_STATUS), true),
            field("rag", "RAG", Choice(RAG), false),
        ],
    },
    Kind {
        id: "stakeholder",
        title: "Stakeholder",
        plural: "Stakeholders",
        prefix: "STK",
        area: Area::Stakeholders,
        description: "Who the programme engages, how often and how, placed on the power and interest grid.",
        name_field: "name",
        columns: &["name", "sector", "power", "interest", "method", "owner"],
        fields: &[
            field("name", "Stakeholder", Text, true),
            field("sector", "Sector", Choice(SECTORS), true),
            hinted("power", "Power", "1 (little influence) to 5 (decisive).", Score, true),
            hinted("interest", "Interest", "1 (little) to 5 (intense).", Score, true),
            field(
                "method",
                "Engagement method",
                Choice(&["Meeting", "Committee", "Workshop", "Newsletter", "Email", "Survey", "Network event"]),
                true,
            ),
            field(
                "frequency",
                "Frequency",
                Choice(&["Weekly", "Monthly", "Quarterly", "Twice a year", "Annually", "As needed"]),
                true,
            ),
            field("owner", "Owner", Text, true),
            field("notes", "Notes", LongText, false),
        ],
    },
    Kind {
        id: "engagement",
        title: "Engagement",
        plural: "Engagement log",
        prefix: "ENG",
        area: Area::Stakeholders,
        description: "What happened each time the programme engaged a stakeholder.",
        name_field: "summary",
        columns: &["date", "stakeholder", "method", "summary"],
        fields: &[
            field("stakeholder", "Stakeholder", Ref("stakeholder"), true),
            field("date", "Date", Date, true),
            field(
                "method",
                "Method",
                Choice(&["Meeting", "Committee", "Workshop", "Newsletter", "Email", "Survey", "Network event"]),
                true,
            ),
            field("summary", "Summary", LongText, true),
            field("by", "By", Text, true),
        ],
    },
    Kind {
        id: "risk",
        title: "Risk",
        plural: "Risks",
        prefix: "RSK",
        area: Area::Risk,
        description: "The integrated risk register across sectors, scored on the 5×5 matrix.",
        name_field: "title",
        columns: &["title", "sector", "owner", "review_date"],
        fields: &[
            field("title", "Title", Text, true),
            hinted("cause", "Cause", "Because of …", LongText, true),
            hinted("event", "Event", "… there is a risk that …", LongText, true),
            hinted("effect", "Effect", "… which would lead to …", LongText, true),
            field("sector", "Sector", Choice(SECTORS), true),
            field("owner", "Owner", Text, true),
            hinted(
                "aim",
                "Aim at risk",
                "A risk linked to an aim is a principal risk in the assurance framework.",
                Ref("aim"),
                false,
            ),
            field("inherent_likelihood", "Inherent likelihood", Score, true),
            field("inherent_consequence", "Inherent consequence", Score, true),
            field("current_likelihood", "Current likelihood", Score, true),
            field("current_consequence", "Current consequence", Score, true),
            field("target_likelihood", "Target likelihood", Score, true),
            field("target_consequence", "Target consequence", Score, true),
            field("controls", "Key controls", LongText, false),
            field("gaps_in_control", "Gaps in control", LongText, false),
            field("gaps_in_assurance", "Gaps in assurance", LongText, false),
            field("review_date", "Next review", Date, true),
            field("trend", "Trend", Choice(&["Improving", "Stable", "Worsening"]), false),
        ],
    },
    Kind {
        id: "risk-action",
        title: "Risk action",
        plural: "Risk actions",
        prefix: "ACT",
        area: Area::Risk,
        description: "Actions that reduce a risk, each with an owner and a date.",
        name_field: "action",
        columns: &["risk", "action", "owner", "due", "status"],
        fields: &[
            field("risk", "Risk", Ref("risk"), true),
            field("action", "Action", LongText, true),
            field("owner", "Owner", Text, true),
            field("due", "Due", Date, true),
            field("status", "Status", Choice(&["Open", "In progress", "Done"]), true),
        ],
    },
    Kind {
        id: "watch",
        title: "Watched measure",
        plural: "Watched measures",
        prefix: "WCH",
        area: Area::Risk,
        description: "A measure a risk watches for one organisation: the register shows its live signal and flags the risk when it turns.",
        name_field: "measure",
        columns: &["risk", "org", "measure", "trigger"],
        fields: &[
            field("risk", "Risk", Ref("risk"), true),
            hinted(
                "org",
                "Organisation",
                "Code of the organisation whose values are watched (e.g. an ICB code).",
                Org,
                true,
            ),
            field("measure", "Measure", Measure, true),
            field("trigger", "Trigger", Choice(TRIGGERS), true),
        ],
    },
    Kind {
        id: "standard",
        title: "Performance standard",
        plural: "Performance standards",
        prefix: "STD",
        area: Area::Assurance,
        description: "Standards bound to measures and targets. Their RAG is computed from the measure (Making Data Count assurance and variation), never typed in.",
        name_field: "title",
        columns: &["title", "org", "measure", "target"],
        fields: &[
            field("title", "Standard", Text, true),
            field("aim", "Aim", Ref("aim"), false),
            hinted("risk", "Principal risk", "The risk whose control this standard evidences.", Ref("risk"), false),
            field("org", "Organisation", Org, true),
            field("measure", "Measure", Measure, true),
            hinted(
                "target",
                "Target",
                "In the measure's unit; better is the measure's direction.",
                Number { min: -1e12, max: 1e12 },
                true,
            ),
            field("owner", "Owner", Text, true),
        ],
    },
    Kind {
        id: "assurance-source",
        title: "Source of assurance",
        plural: "Sources of assurance",
        prefix: "SOA",
        area: Area::Assurance,
        description: "Evidence that a principal risk's controls work, tagged by line of defence.",
        name_field: "source",
        columns: &["risk", "source", "line", "rating"],
        fields: &[
            field("risk", "Principal risk", Ref("risk"), true),
            field("source", "Source", Text, true),
            field("line", "Line of defence", Choice(LINES), true),
            field(
                "rating",
                "What it shows",
                Choice(&["Positive assurance", "Partial assurance", "Negative assurance", "Reassurance only"]),
                true,
            ),
            field("date", "Date received", Date, false),
        ],
    },
    Kind {
        id: "workforce-return",
        title: "Workforce return",
        plural: "Workforce returns",
        prefix: "WF",
        area: Area::Workforce,
        description: "Establishment and staff in post by sector and role, each quarter.",
        name_field: "role",
        columns: &["quarter", "sector", "role", "establishment_wte", "in_post_wte", "headcount"],
        fields: &[
            field("quarter", "Quarter", Quarter, true),
            field("sector", "Sector", Choice(SECTORS), true),
            field("role", "Role", Choice(ROLES), true),
            hinted(
                "establishment_wte",
                "Funded establishment (WTE)",
                "Whole-time equivalents funded.",
                Number { min: 0.0, max: 100_000.0 },
                true,
            ),
            field("in_post_wte", "Staff in post (WTE)", Number { min: 0.0, max: 100_000.0 }, true),
            field("headcount", "Headcount", Integer { min: 0, max: 1_000_000 }, true),
            hinted(
                "leavers_wte",
                "Leavers in the quarter (WTE)",
                "For the turnover rate.",
                Number { min: 0.0, max: 100_000.0 },
                false,
            ),
        ],
    },
    Kind {
        id: "training",
        title: "Training pipeline return",
        plural: "Training pipeline",
        prefix: "TRN",
        area: Area::Workforce,
        description: "Places, starters and completions of the pharmacy training pipeline, each quarter.",
        name_field: "programme",
        columns: &["quarter", "programme", "sector", "places", "starters", "completions"],
        fields: &[
            field("quarter", "Quarter", Quarter, true),
            field("programme", "Programme", Choice(PROGRAMMES), true),
            field("sector", "Sector", Choice(SECTORS), true),
            field("places", "Places commissioned", Integer { min: 0, max: 100_000 }, true),
            field("starters", "Starters", Integer { min: 0, max: 100_000 }, false),
            field("completions", "Completions", Integer { min: 0, max: 100_000 }, false),
        ],
    },
    Kind {
        id: "case-study",
        title: "Case study",
        plural: "Case studies",
        prefix: "CS",
        area: Area::Evidence,
        description: "Evidence-based case studies, linked to the measures and charts that show their effect.",
        name_field: "title",
        columns: &["title", "sector", "org", "measures"],
        fields: &[
            field("title", "Title", Text, true),
            field("sector", "Sector", Choice(SECTORS), true),
            field("org", "Organisation", Org, false),
            field("summary", "What was done", LongText, true),
            field("outcome", "What changed", LongText, false),
            field("measures", "Measures", MeasureList, false),
            field("author", "Author", Text, true),
        ],
    },
    Kind {
        id: "decision",
        title: "Decision",
        plural: "Decision log",
        prefix: "DEC",
        area: Area::Evidence,
        description: "The leadership group's decisions, with their reasons.",
        name_field: "title",
        columns: &["date", "title", "meeting", "owner", "status"],
        fields: &[
            field("title", "Decision", Text, true),
            field("date", "Date", Date, true),
            field("meeting", "Meeting", Ref("committee"), false),
            field("detail", "What was decided", LongText, true),
            field("rationale", "Why", LongText, false),
            field("owner", "Owner", Text, true),
            field("status", "Status", Choice(&["Agreed", "Deferred", "Superseded"]), true),
        ],
    },
    Kind {
        id: "scheme",
        title: "Savings scheme",
        plural: "Savings schemes",
        prefix: "SAV",
        area: Area::Value,
        description: "The cost-efficiency programme: switches from one set of products to another, reductions in a product's use, and better prices for a set. Each scheme's saving is measured every month from the prescribing against a baseline period, never typed in.",
        name_field: "title",
        columns: &["title", "scheme_type", "org", "start", "planned_annual", "status"],
        fields: &[
            field("title", "Scheme", Text, true),
            hinted(
                "scheme_type",
                "Type",
                "Switch: volume moved from the first products to the second. Reduction: spend per patient below the baseline. Price per unit: a lower price paid for the same products.",
                Choice(SCHEME_TYPES),
                true,
            ),
            hinted(
                "org",
                "Organisation covered",
                "Code of the ICB, sub-ICB location, PCN or practice whose practices the scheme covers.",
                Org,
                true,
            ),
            hinted(
                "from_codes",
                "Products (from)",
                "BNF code prefixes separated by commas: what is switched from, reduced, or bought better (e.g. 0212000B0).",
                BnfCodes,
                true,
            ),
            hinted(
                "to_codes",
                "Products switched to",
                "Switches only: BNF code prefixes of what is switched to.",
                BnfCodes,
                false,
            ),
            hinted("start", "Start", "First month the scheme counts savings, YYYY-MM.", Month, true),
            hinted("baseline_from", "Baseline from", "First month of the baseline period, YYYY-MM.", Month, true),
            hinted("baseline_to", "Baseline to", "Last month of the baseline period, before the start.", Month, true),
            hinted(
                "planned_annual",
                "Planned saving a year (£)",
                "What the scheme is planned to save in a full year.",
                Number { min: 0.0, max: 1e10 },
                true,
            ),
            field("aim", "Aim", Ref("aim"), false),
            field("risk", "Risk", Ref("risk"), false),
            hinted(
                "workstream",
                "Workstream",
                "The plan-on-a-page workstream that delivers it.",
                Ref("workstream"),
                false,
            ),
            field("owner", "Owner", Text, true),
            field("status", "Status", Choice(WORK_STATUS), true),
            field("notes", "Notes", LongText, false),
        ],
    },
    Kind {
        id: "horizon",
        title: "Horizon-scan item",
        plural: "Horizon scan",
        prefix: "HZN",
        area: Area::Value,
        description: "What is coming that will change medicines spend: patent expiries and generic launches, biosimilars, NICE technology appraisals, Drug Tariff changes, concessions, discontinuations and shortages. The cost pressure or saving a year is computed from the organisation's own prescribing and the expected price change, not typed.",
        name_field: "title",
        columns: &["title", "category", "expected", "org", "price_change_pct", "status"],
        fields: &[
            field("title", "Item", Text, true),
            field("category", "Category", Choice(HORIZON_CATEGORIES), true),
            hinted("expected", "Expected", "When it is expected to happen, YYYY-MM-DD.", Date, true),
            hinted(
                "codes",
                "Products concerned",
                "BNF code prefixes separated by commas whose prescribing it changes.",
                BnfCodes,
                true,
            ),
            hinted("org", "Organisation", "Whose prescribing sizes the impact (usually the ICB).", Org, true),
            hinted(
                "price_change_pct",
                "Expected change in cost (%)",
                "Per cent change in what the products cost: -80 for generics at a fifth of the brand's price, +25 for a shortage premium.",
                Number { min: -100.0, max: 10_000.0 },
                true,
            ),
            field("owner", "Owner", Text, true),
            field("status", "Status", Choice(HORIZON_STATUS), true),
            hinted(
                "source",
                "Source",
                "Where it came from: a signal in the data, a regional scan, a NICE publication.",
                Text,
                false,
            ),
            field("notes", "Notes", LongText, false),
        ],
    },
];

/// The kind with this id.
pub fn kind(id: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.id == id)
}

impl Kind {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        // Kinds are 'static, so their fields are too.
        let fields: &'static [Field] = self.fields;
        fields.iter().find(|f| f.name == name)
    }

    /// What record `id` of this kind, holding `data`, is called in lists, links and reports: its
    /// name field, cut to 80 characters, or its reference when that is empty.
    pub fn record_name(&self, id: i64, data: &Map<String, Value>) -> String {
        let f = self.field(self.name_field).copied();
        let text = f.map(|f| display_value(&f, data.get(f.name))).unwrap_or_default();
        let short: String = text.chars().take(80).collect();
        if short.is_empty() {
            self.reference(id)
        } else if short.len() < text.len() {
            format!("{short}…")
        } else {
            short
        }
    }

    /// A record's reference for people, e.g. `RSK-12`.
    pub fn reference(&self, id: i64) -> String {
        format!("{}-{id}", self.prefix)
    }

    /// The fields that point at records of other kinds.
    pub fn refs(&self) -> impl Iterator<Item = (&'static Field, &'static str)> {
        let fields: &'static [Field] = self.fields;
        fields.iter().filter_map(|f| match f.ty {
            Ref(k) => Some((f, k)),
            _ => None,
        })
    }
}

/// One field's problem, shown beside that field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// What is wrong and what to enter instead.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

/// What validation asks of the dashboard's data: whether measure ids and organisation codes
/// exist. Record references are checked by the store, inside the write's transaction.
pub trait Lookups {
    /// Whether the measure library has this measure.
    fn measure_exists(&self, id: &str) -> bool;
    /// Whether the dashboard knows this organisation code.
    fn org_exists(&self, code: &str) -> bool;
    /// Whether some presentation in the prescribing data has a BNF code starting with this.
    fn bnf_prefix_exists(&self, prefix: &str) -> bool;
}

/// Lookups that accept everything, for tools that have no measure library at hand.
pub struct AcceptAll;

impl Lookups for AcceptAll {
    fn measure_exists(&self, _: &str) -> bool {
        true
    }
    fn org_exists(&self, _: &str) -> bool {
        true
    }
    fn bnf_prefix_exists(&self, _: &str) -> bool {
        true
    }
}

/// Longest text accepted in a field, in characters.
pub const MAX_TEXT: usize = 20_000;

/// Most levels a chain of records may have through a field that points at the same kind
/// (`reports_to`, `parent`): an organogram deeper than this is a mistake, and a chain thousands
/// deep once crashed the page that draws it. Saves and imports past it are refused.
pub const MAX_HIERARCHY_DEPTH: usize = 50;

/// Turns submitted text (a form or a CSV row) into a record's JSON data, or says what is wrong
/// with each field. Blank optional fields are left out. Keys that are not fields of the kind are
/// refused, so a typo in an API call or an import header is not silently dropped.
pub fn validate(
    kind: &Kind,
    input: &BTreeMap<String, String>,
    lookups: &dyn Lookups,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut data = Map::new();
    for key in input.keys() {
        if kind.field(key).is_none() {
            errors.push(FieldError::new(key, format!("\"{key}\" is not a field of a {}", kind.title.to_lowercase())));
        }
    }
    for f in kind.fields {
        let raw = input.get(f.name).map(|s| s.trim()).unwrap_or("");
        if raw.is_empty() {
            if f.required {
                errors.push(FieldError::new(f.name, format!("Enter {}", f.label.to_lowercase())));
            }
            continue;
        }
        if raw.chars().count() > MAX_TEXT {
            errors.push(FieldError::new(f.name, format!("{} must be at most {MAX_TEXT} characters", f.label)));
            continue;
        }
        match parse_value(f, raw, lookups) {
            Ok(v) => {
                data.insert(f.name.to_string(), v);
            }
            Err(message) => errors.push(FieldError::new(f.name, message)),
        }
    }
    if errors.is_empty() {
        errors = across_fields(kind, &data);
    }
    if errors.is_empty() { Ok(data) } else { Err(errors) }
}

/// Checks that involve more than one field: a switch names what it switches to, and a scheme's
/// baseline runs forwards and ends before the scheme starts (months written `YYYY-MM` compare
/// as text).
fn across_fields(kind: &Kind, data: &Map<String, Value>) -> Vec<FieldError> {
    let text = |name: &str| data.get(name).and_then(Value::as_str).unwrap_or("");
    let mut errors = Vec::new();
    if kind.id == "scheme" {
        if text("scheme_type") == "Switch" && text("to_codes").is_empty() {
            errors.push(FieldError::new("to_codes", "A switch needs the products switched to"));
        }
        if text("scheme_type") != "Switch" && !text("to_codes").is_empty() {
            errors.push(FieldError::new("to_codes", "Only a switch has products switched to; leave this blank"));
        }
        if text("baseline_from") > text("baseline_to") {
            errors.push(FieldError::new("baseline_to", "The baseline must end on or after the month it starts"));
        }
        if text("baseline_to") >= text("start") {
            errors.push(FieldError::new("baseline_to", "The baseline must end before the scheme starts"));
        }
    }
    errors
}

fn parse_value(f: &Field, raw: &str, lookups: &dyn Lookups) -> Result<Value, String> {
    let label = f.label;
    match f.ty {
        Text if raw.contains(['\n', '\r']) => Err(format!("{label} must be one line")),
        Text | LongText => Ok(Value::String(raw.replace("\r\n", "\n"))),
        Date => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| format!("{label} must be a real date written YYYY-MM-DD, e.g. 2026-03-31")),
        Quarter => parse_quarter(raw)
            .map(|(y, q)| Value::String(format!("{y}-Q{q}")))
            .ok_or_else(|| format!("{label} must be a quarter written YYYY-Qn, e.g. 2026-Q1")),
        Score => match raw.parse::<i64>() {
            Ok(n) if (1..=5).contains(&n) => Ok(Value::from(n)),
            _ => Err(format!("{label} must be a whole number from 1 to 5")),
        },
        Integer { min, max } => match raw.replace(',', "").parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
            _ => Err(format!("{label} must be a whole number from {min} to {max}")),
        },
        Number { min, max } => match raw.replace(',', "").parse::<f64>() {
            Ok(n) if n.is_finite() && (min..=max).contains(&n) => Ok(Value::from(n)),
            _ => Err(format!("{label} must be a number from {min} to {max}")),
        },
        Choice(options) => options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(raw))
            .map(|o| Value::String((*o).to_string()))
            .ok_or_else(|| format!("{label} must be one of: {}", options.join("; "))),
        Ref(kind_id) => {
            let target = kind(kind_id).map_or(kind_id, |k| k.prefix);
            let digits = raw.strip_prefix(&format!("{target}-")).unwrap_or(raw);
            match digits.parse::<i64>() {
                Ok(n) if n > 0 => Ok(Value::from(n)),
                _ => Err(format!("{label} must be the number of a record, e.g. {target}-3")),
            }
        }
        Measure => {
            if lookups.measure_exists(raw) {
                Ok(Value::String(raw.to_string()))
            } else {
                Err(format!("There is no measure \"{raw}\"; use an id from the measure list, e.g. broad_spectrum"))
            }
        }
        MeasureList => {
            let ids: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            let unknown: Vec<&str> = ids.iter().copied().filter(|id| !lookups.measure_exists(id)).collect();
            if unknown.is_empty() {
                Ok(Value::String(ids.join(", ")))
            } else {
                Err(format!("Unknown measure ids: {}", unknown.join(", ")))
            }
        }
        Month => chrono::NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d")
            .map(|d| Value::String(d.format("%Y-%m").to_string()))
            .map_err(|_| format!("{label} must be a month written YYYY-MM, e.g. 2025-04")),
        BnfCodes => {
            let codes: Vec<String> =
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_uppercase).collect();
            if codes.len() > MAX_BNF_CODES {
                return Err(format!("{label}: at most {MAX_BNF_CODES} BNF codes"));
            }
            if let Some(bad) = codes.iter().find(|c| c.len() > 15 || !c.bytes().all(|b| b.is_ascii_alphanumeric())) {
                return Err(format!(
                    "\"{bad}\" is not a BNF code prefix (letters and digits, at most 15, e.g. 0212000B0)"
                ));
            }
            let unknown: Vec<&str> =
                codes.iter().filter(|c| !lookups.bnf_prefix_exists(c)).map(String::as_str).collect();
            if unknown.is_empty() {
                Ok(Value::String(codes.join(", ")))
            } else {
                Err(format!("No presentation in the prescribing data has a BNF code starting {}", unknown.join(", ")))
            }
        }
        Org => {
            let code = raw.to_uppercase();
            if lookups.org_exists(&code) {
                Ok(Value::String(code))
            } else {
                Err(format!("There is no organisation with code \"{raw}\""))
            }
        }
    }
}

/// `YYYY-Qn` as (year, quarter).
pub fn parse_quarter(s: &str) -> Option<(u16, u8)> {
    let (y, q) = s.trim().split_once(['-', ' '])?;
    let year: u16 = y.parse().ok().filter(|y| (2000..=2100).contains(y))?;
    let quarter: u8 = q.strip_prefix(['Q', 'q'])?.parse().ok().filter(|q| (1..=4).contains(q))?;
    Some((year, quarter))
}

/// A record's field as text for a form, a table cell or CSV (references as `RSK-12`).
pub fn display_value(f: &Field, v: Option<&Value>) -> String {
    match (v, f.ty) {
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::Number(n)), Ref(k)) => match (n.as_i64(), kind(k)) {
            (Some(id), Some(target)) => target.reference(id),
            _ => n.to_string(),
        },
        (Some(Value::String(s)), _) => s.clone(),
        // Whole numbers read without a trailing ".0" (a planned saving of 19600, not 19600.0).
        (Some(Value::Number(n)), _) if n.as_f64().is_some_and(|x| x.fract() == 0.0 && x.abs() < 1e15) => {
            format!("{}", n.as_f64().unwrap_or(0.0) as i64)
        }
        (Some(other), _) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    struct Known;
    impl Lookups for Known {
        fn measure_exists(&self, id: &str) -> bool {
            id == "broad_spectrum" || id == "doacs"
        }
        fn org_exists(&self, code: &str) -> bool {
            code == "QMJ"
        }
        fn bnf_prefix_exists(&self, prefix: &str) -> bool {
            "0212000B0AAAAAA".starts_with(prefix) || "0212000AAAAAAAA".starts_with(prefix)
        }
    }

    #[test]
    fn a_scheme_is_checked_across_its_fields() {
        let scheme = kind("scheme").unwrap();
        let base = [
            ("title", "Atorvastatin to rosuvastatin"),
            ("scheme_type", "switch"),
            ("org", "qmj"),
            ("from_codes", "0212000b0, 0212000AA"),
            ("start", "2025-04"),
            ("baseline_from", "2024-04"),
            ("baseline_to", "2025-03"),
            ("planned_annual", "12,000"),
            ("owner", "Lead pharmacist"),
            ("status", "In progress"),
        ];
        let errors = validate(scheme, &input(&base), &Known).unwrap_err();
        assert_eq!(errors, [FieldError::new("to_codes", "A switch needs the products switched to")]);
        let mut ok = base.to_vec();
        ok.push(("to_codes", "0212000AA"));
        let data = validate(scheme, &input(&ok), &Known).unwrap();
        assert_eq!(data["from_codes"], "0212000B0, 0212000AA");
        assert_eq!(data["scheme_type"], "Switch");
        assert_eq!(data["start"], "2025-04");
        let mut late = ok.clone();
        late.push(("baseline_to", "2025-04"));
        late.retain(|(k, v)| *k != "baseline_to" || *v == "2025-04");
        let errors = validate(scheme, &input(&late), &Known).unwrap_err();
        assert_eq!(errors[0].message, "The baseline must end before the scheme starts");
        let mut bad = ok.clone();
        bad.retain(|(k, _)| *k != "to_codes");
        bad.push(("to_codes", "9999, 02'12"));
        let errors = validate(scheme, &input(&bad), &Known).unwrap_err();
        assert!(errors[0].message.contains("\"02'12\" is not a BNF code prefix"), "{errors:?}");
        let mut unknown = ok.clone();
        unknown.retain(|(k, _)| *k != "to_codes");
        unknown.push(("to_codes", "0407"));
        let errors = validate(scheme, &input(&unknown), &Known).unwrap_err();
        assert!(errors[0].message.contains("starting 0407"), "{errors:?}");
        let mut month = ok;
        month.retain(|(k, _)| *k != "start");
        month.push(("start", "April 2025"));
        assert!(validate(scheme, &input(&month), &Known).unwrap_err()[0].message.contains("YYYY-MM"));
    }

    #[test]
    fn every_kind_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        let mut prefixes = std::collections::HashSet::new();
        for k in KINDS {
            assert!(ids.insert(k.id), "duplicate kind {}", k.id);
            assert!(prefixes.insert(k.prefix), "duplicate prefix {}", k.prefix);
            assert!(k.field(k.name_field).is_some(), "{}: name field", k.id);
            for c in k.columns {
                assert!(k.field(c).is_some(), "{}: column {c}", k.id);
            }
            for (f, target) in k.refs() {
                assert!(kind(target).is_some(), "{}.{} points at unknown kind {target}", k.id, f.name);
            }
            let mut names = std::collections::HashSet::new();
            for f in k.fields {
                assert!(names.insert(f.name), "{}: duplicate field {}", k.id, f.name);
                assert!(!matches!(f.name, "csrf" | "version" | "id"), "{}: reserved field {}", k.id, f.name);
            }
        }
    }

    #[test]
    fn a_valid_risk_becomes_typed_json() {
        let risk = kind("risk").unwrap();
        let mut i = input(&[
            ("title", "Antibiotic overuse"),
            ("cause", "c"),
            ("event", "e"),
            ("effect", "f"),
            ("sector", "system-wide"),
            ("owner", "Chief pharmacist"),
            ("aim", "AIM-3"),
            ("review_date", "2026-12-01"),
        ]);
        for (k, v) in [("inherent", "4"), ("current", "3"), ("target", "2")] {
            i.insert(format!("{k}_likelihood"), v.into());
            i.insert(format!("{k}_consequence"), "4".into());
        }
        let data = validate(risk, &i, &Known).unwrap();
        assert_eq!(data["sector"], "System-wide");
        assert_eq!(data["aim"], 3);
        assert_eq!(data["current_likelihood"], 3);
        assert!(!data.contains_key("controls"));
        assert_eq!(display_value(risk.field("aim").unwrap(), data.get("aim")), "AIM-3");
    }

    #[test]
    fn errors_name_each_field_and_say_what_to_enter() {
        let risk = kind("risk").unwrap();
        let i = input(&[
            ("title", "Two\nlines"),
            ("inherent_likelihood", "6"),
            ("review_date", "2026-02-30"),
            ("sector", "Moon"),
            ("colour", "red"),
        ]);
        let errors = validate(risk, &i, &Known).unwrap_err();
        let message = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.clone()).unwrap_or_default();
        assert_eq!(message("title"), "Title must be one line");
        assert_eq!(message("inherent_likelihood"), "Inherent likelihood must be a whole number from 1 to 5");
        assert!(message("review_date").contains("YYYY-MM-DD"));
        assert!(message("sector").starts_with("Sector must be one of: ICB;"));
        assert!(message("colour").contains("not a field"));
        assert_eq!(message("owner"), "Enter owner");
        // A bare CR splits a CSV row in some readers: one-line fields refuse it too.
        let cr = validate(risk, &input(&[("title", "CRtest\r=2+2")]), &Known).unwrap_err();
        assert!(cr.iter().any(|e| e.field == "title" && e.message == "Title must be one line"));
    }

    #[test]
    fn measures_and_organisations_must_exist() {
        let watch = kind("watch").unwrap();
        let i = input(&[("risk", "1"), ("org", "qmj"), ("measure", "nope"), ("trigger", "Worst decile nationally")]);
        let errors = validate(watch, &i, &Known).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("no measure \"nope\""));
        let aim = kind("aim").unwrap();
        let i = input(&[
            ("title", "t"),
            ("owner", "o"),
            ("status", "In progress"),
            ("measures", "doacs, x1 ,broad_spectrum"),
        ]);
        assert_eq!(validate(aim, &i, &Known).unwrap_err()[0].message, "Unknown measure ids: x1");
    }

    #[test]
    fn quarters_parse() {
        assert_eq!(parse_quarter("2026-Q3"), Some((2026, 3)));
        assert_eq!(parse_quarter("2026 q1"), Some((2026, 1)));
        assert_eq!(parse_quarter("2026-Q5"), None);
        assert_eq!(parse_quarter("26-Q1"), None);
    }

    proptest! {
        /// Validation never panics, and whatever it accepts only holds fields of the kind.
        #[test]
        fn validation_is_total(k in 0..KINDS.len(), values in proptest::collection::vec(".{0,12}", 0..20)) {
            let kind = &KINDS[k];
            let mut i = BTreeMap::new();
            for (f, v) in kind.fields.iter().zip(&values) {
                i.insert(f.name.to_string(), v.clone());
            }
            if let Ok(data) = validate(kind, &i, &Known) {
                for key in data.keys() {
                    prop_assert!(kind.field(key).is_some());
                }
            }
        }

        /// A score is accepted exactly when it is a whole number from 1 to 5.
        #[test]
        fn scores_are_one_to_five(n in -10i64..20) {
            let f = Field { name: "s", label: "S", hint: "", ty: Score, required: true };
            prop_assert_eq!(parse_value(&f, &n.to_string(), &AcceptAll).is_ok(), (1..=5).contains(&n));
        }
    }
}
