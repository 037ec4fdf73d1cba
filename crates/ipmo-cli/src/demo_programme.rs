//! The demo's governance programme: a credible, clearly fictional IPMO programme for the first
//! ICB of the synthetic system, tied to its measures, so a newcomer sees records, plans, risks
//! watching measures and computed assurance working together. Every record goes through the
//! same validation as a form, so the demo cannot hold what a user could not enter.

use crate::governance::CLI_ACTOR;
use anyhow::{Context, Result, anyhow};
use ipmo_domain::YearMonth;
use ipmo_governance::kinds::{self, AcceptAll};
use ipmo_governance::{GovernanceStore, Location, Role, SqlStore};
use ipmo_warehouse::{OutputFormat, Warehouse};
use std::collections::BTreeMap;

/// The demo administrator's sign-in.
pub(crate) const DEMO_ADMIN: (&str, &str) = ("demo-admin", "ipmo-demo-password");

async fn add(store: &SqlStore, kind: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let k = kinds::kind(kind).ok_or_else(|| anyhow!("unknown kind {kind}"))?;
    let input: BTreeMap<String, String> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let data = kinds::validate(k, &input, &AcceptAll).map_err(|e| {
        anyhow!(
            "demo {kind}: {}",
            e.iter().map(|x| format!("{}: {}", x.field, x.message)).collect::<Vec<_>>().join("; ")
        )
    })?;
    let rec = store.create(kind, data, CLI_ACTOR).await.with_context(|| format!("demo {kind}"))?;
    Ok(k.reference(rec.id))
}

/// Baseline period of the demo's schemes: the six months before each starts.
const BASELINE_MONTHS: u32 = 6;

/// The demo schemes' planned annual savings, set from the ICB's baseline spend the way a
/// pharmacist would size a plan (a share of what is spent), rounded to £100.
struct SchemePlans {
    switch: f64,
    price: f64,
    reduction: f64,
}

impl SchemePlans {
    fn from_data(wh: &Warehouse, rt: &tokio::runtime::Runtime, icb: &str, v: &ValueEvents) -> Result<Self> {
        let e = &v.events;
        // A year of the ICB's NIC on `codes` at the rate of the six months before `start`.
        let annual = |codes: &str, start: YearMonth| -> Result<f64> {
            let sql = format!(
                "SELECT SUM(p.nic) AS nic FROM prescribing_current p                  JOIN org_membership_latest m ON p.practice_code = m.practice_code                  WHERE m.icb_code = '{}' AND p.bnf_code LIKE '{codes}%'                  AND p.month >= DATE '{}' AND p.month <= DATE '{}'",
                icb.replace('\'', "''"),
                start.minus(BASELINE_MONTHS).first_day(),
                start.minus(1).first_day()
            );
            let nic = rows(wh, rt, &sql)?.first().and_then(|r| r.get("nic")).and_then(|n| n.as_f64()).unwrap_or(0.0);
            Ok(nic * 12.0 / f64::from(BASELINE_MONTHS))
        };
        let round = |v: f64| (v / 100.0).round() * 100.0;
        Ok(Self {
            // Half the esomeprazole moved, at about seven-tenths of its price saved.
            switch: round(annual(e.switch_from, e.switch_start)? * 0.5 * 0.7),
            // Most of the fall in price, a little less than the whole.
            price: round(annual(e.price_drop_chemical, e.price_drop)? * -e.price_drop_pct / 100.0 * 0.9),
            // A tenth off dosulepin, a low-priority item.
            reduction: round(annual(DOSULEPIN, e.switch_start)? * 0.1).max(100.0),
        })
    }
}

/// One of the demo's savings schemes, as its form would be filled in.
struct DemoScheme<'a> {
    title: &'a str,
    kind: &'a str,
    from: &'a str,
    to: &'a str,
    start: YearMonth,
    planned: f64,
    aim: &'a str,
    workstream: Option<&'a str>,
    risk: Option<&'a str>,
    notes: &'a str,
}

/// Dosulepin, a low-priority item (NHS England advises against starting it).
const DOSULEPIN: &str = "0403010J0";

/// The demo's value programme: three schemes measured from the synthetic data (the switch and the
/// price drop it carries, and a reduction it does not, which shows red), and a horizon scan
/// spread over two financial years.
async fn value_programme(store: &SqlStore, icb: &str, v: &ValueEvents, plans: &SchemePlans) -> Result<()> {
    let e = &v.events;
    let records = store.records("aim", false).await?;
    let aim = |words: &str| records.iter().find(|r| r.text("title").contains(words)).map(|r| format!("AIM-{}", r.id));
    let (value_aim, horizon_aim) =
        (aim("medicines value").unwrap_or_default(), aim("horizon scanning").unwrap_or_default());
    let workstreams = store.records("workstream", false).await?;
    let ws = workstreams.iter().find(|w| w.text("title").contains("Best-value")).map(|w| format!("WS-{}", w.id));
    let risks = store.records("risk", false).await?;
    let lp_risk = risks.iter().find(|r| r.text("title").contains("Low-priority")).map(|r| format!("RSK-{}", r.id));
    let schemes = [
        DemoScheme {
            title: "Esomeprazole to omeprazole capsules",
            kind: "Switch",
            from: e.switch_from,
            to: "0103050P0AAAAAA, 0103050P0AAAEAE",
            start: e.switch_start,
            planned: plans.switch,
            aim: &value_aim,
            workstream: ws.as_deref(),
            risk: None,
            notes: "PCN pharmacists review patients on esomeprazole and switch those suitable to omeprazole capsules of the equivalent strength.",
        },
        DemoScheme {
            title: "Rivaroxaban at the generic price",
            kind: "Price per unit",
            from: e.price_drop_chemical,
            to: "",
            start: e.price_drop,
            planned: plans.price,
            aim: &horizon_aim,
            workstream: ws.as_deref(),
            risk: None,
            notes: "Generic rivaroxaban from the month of launch; prescribers keep prescribing generically so that the ICB pays the new price.",
        },
        DemoScheme {
            title: "Dosulepin: review and deprescribe",
            kind: "Reduction",
            from: DOSULEPIN,
            to: "",
            start: e.switch_start,
            planned: plans.reduction,
            aim: &value_aim,
            workstream: None,
            risk: lp_risk.as_deref(),
            notes: "A low-priority item: practices review patients on dosulepin and, with them, taper and stop or change treatment.",
        },
    ];
    for x in schemes {
        add(
            store,
            "scheme",
            &[
                ("title", x.title),
                ("scheme_type", x.kind),
                ("org", icb),
                ("from_codes", x.from),
                ("to_codes", x.to),
                ("start", &x.start.to_string()),
                ("baseline_from", &x.start.minus(BASELINE_MONTHS).to_string()),
                ("baseline_to", &x.start.minus(1).to_string()),
                ("planned_annual", &format!("{:.0}", x.planned)),
                ("aim", x.aim),
                ("risk", x.risk.unwrap_or("")),
                ("workstream", x.workstream.unwrap_or("")),
                ("owner", "Dr A. Example"),
                ("status", "In progress"),
                ("notes", x.notes),
            ],
        )
        .await?;
    }
    let ahead = |n: u32| v.latest.plus(n).first_day().format("%Y-%m-%d").to_string();
    let launch = e.price_drop.first_day().format("%Y-%m-%d").to_string();
    let pct = format!("{:.0}", e.price_drop_pct);
    let items: [(&str, &str, String, &str, &str, &str, &str); 6] = [
        (
            "Rivaroxaban generic launch",
            "Patent expiry and generic launch",
            launch,
            e.price_drop_chemical,
            &pct,
            "Scheme started",
            "Regional horizon scan",
        ),
        (
            "Tiotropium capsules: supply shortage premium",
            "Shortage",
            ahead(2),
            "0301020Q0",
            "25",
            "Watching",
            "Regional procurement bulletin",
        ),
        (
            "Edoxaban moves to Drug Tariff Category A",
            "Drug Tariff category change",
            ahead(3),
            "0208020AA",
            "-20",
            "Watching",
            "Drug Tariff notice",
        ),
        (
            "Sitagliptin generic launch",
            "Patent expiry and generic launch",
            ahead(5),
            "0601023X0",
            "-85",
            "Planning a response",
            "Regional horizon scan",
        ),
        (
            "Ticagrelor generic launch",
            "Patent expiry and generic launch",
            ahead(9),
            "0209000Z0",
            "-60",
            "Watching",
            "Regional horizon scan",
        ),
        (
            "Dapagliflozin generic entry",
            "Patent expiry and generic launch",
            ahead(14),
            "0601023AG",
            "-70",
            "Watching",
            "Regional horizon scan",
        ),
    ];
    for (title, category, expected, codes, change, status, source) in items {
        add(
            store,
            "horizon",
            &[
                ("title", title),
                ("category", category),
                ("expected", &expected),
                ("codes", codes),
                ("org", icb),
                ("price_change_pct", change),
                ("owner", "Dr A. Example"),
                ("status", status),
                ("source", source),
            ],
        )
        .await?;
    }
    Ok(())
}

fn rows(wh: &Warehouse, rt: &tokio::runtime::Runtime, sql: &str) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    rt.block_on(wh.query_to(sql, OutputFormat::Json, &mut out))?;
    Ok(serde_json::from_slice::<Vec<serde_json::Value>>(&out).unwrap_or_default())
}

/// What the synthetic data carry for the value programme, and the newest month of prescribing.
pub(crate) struct ValueEvents {
    /// The switch and the price drop the synthetic prescribing carries.
    pub events: ipmo_synth::events::Events,
    /// Newest month of prescribing.
    pub latest: YearMonth,
}

/// Seeds the programme into `store` unless it already holds records, and makes sure the demo
/// administrator exists. Returns the ICB the programme is for.
pub(crate) fn seed(store_path: &Location, wh: &Warehouse, value: &ValueEvents, quiet: bool) -> Result<String> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let icbs = rows(wh, &rt, "SELECT code, name FROM orgs WHERE org_type = 'icb' ORDER BY code LIMIT 2")?;
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let icb = icbs.first().ok_or_else(|| anyhow!("the demo warehouse has no ICBs"))?;
    let (icb_code, icb_name) = (text(icb, "code"), text(icb, "name"));
    let neighbour = icbs.get(1).map(|v| text(v, "name")).unwrap_or_else(|| "Neighbouring ICB".into());
    let pcns = rows(
        wh,
        &rt,
        &format!(
            "SELECT p.code, p.name FROM orgs p JOIN orgs s ON p.parent_code = s.code \
             WHERE p.org_type = 'pcn' AND s.parent_code = '{}' ORDER BY p.code LIMIT 3",
            icb_code.replace('\'', "''")
        ),
    )?;
    let outcome = broad_spectrum_outcome(wh, &rt, &icb_code)?;
    let plans = SchemePlans::from_data(wh, &rt, &icb_code, value)?;
    rt.block_on(async {
        let store = crate::governance::open_store(store_path).await?;
        if !store.users().await?.iter().any(|u| u.username == DEMO_ADMIN.0) {
            store.add_user(DEMO_ADMIN.0, "Demo administrator", Role::Admin, DEMO_ADMIN.1, CLI_ACTOR).await?;
        }
        if !store.counts(true).await?.is_empty() {
            store.close().await;
            return Ok::<_, anyhow::Error>(icb_code.clone());
        }
        if !quiet {
            eprintln!("demo: seeding a fictional IPMO programme for {icb_name} ({icb_code})");
        }
        programme(
            &store,
            &icb_code,
            &icb_name,
            &neighbour,
            &pcns.iter().map(|p| (text(p, "code"), text(p, "name"))).collect::<Vec<_>>(),
            &outcome,
        )
        .await?;
        value_programme(&store, &icb_code, value, &plans).await?;
        store.close().await;
        Ok(icb_code.clone())
    })
}

/// What the case study says the dashboard achieved, read from the ICB's own broad-spectrum
/// values (the six months before the middle of the period against the last six), so the record
/// cannot claim what the charts do not show.
fn broad_spectrum_outcome(wh: &Warehouse, rt: &tokio::runtime::Runtime, icb: &str) -> Result<String> {
    let values = rows(
        wh,
        rt,
        &format!(
            "SELECT CAST(month AS VARCHAR) AS month, value FROM measure_values WHERE measure_id = 'broad_spectrum' \
             AND org_type = 'icb' AND org_code = '{}' AND value IS NOT NULL ORDER BY month",
            icb.replace('\'', "''")
        ),
    )?;
    let points: Vec<(String, f64)> = values
        .iter()
        .filter_map(|v| Some((v.get("month")?.as_str()?.chars().take(7).collect(), v.get("value")?.as_f64()?)))
        .collect();
    let n = points.len();
    if n < 12 {
        return Ok("See the broad-spectrum chart for what changed.".into());
    }
    let mean = |s: &[(String, f64)]| s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64;
    let (before, after) = (&points[n / 2 - 6..n / 2], &points[n - 6..]);
    let (b, a) = (mean(before), mean(after));
    let way = if a < b { "fell" } else { "rose" };
    let span = |s: &[(String, f64)]| match (s[0].0.parse(), s[5].0.parse()) {
        (Ok(from), Ok(to)) => ipmo_domain::display::month_span(from, to),
        _ => format!("{} to {}", s[0].0, s[5].0),
    };
    Ok(format!(
        "Broad-spectrum antibiotics {way} from {b:.1}% of oral antibacterial items ({}) to {a:.1}% ({}), after the practice-level views were shared with every PCN.",
        span(before),
        span(after)
    ))
}

/// A demo risk: title, sector, the aim it threatens (index), inherent, current and target
/// likelihood and consequence, and the measures it watches with their triggers.
type DemoRisk = (&'static str, &'static str, usize, [&'static str; 6], &'static [(&'static str, &'static str)]);

/// A demo risk's own words: cause, key controls, gaps in control, gaps in assurance, next review.
type RiskText = (&'static str, &'static str, &'static str, &'static str, &'static str);

/// The words of each demo risk, in the order of the risks: each its own, as a real register's are.
/// Two reviews fall before the end of November 2026, so the register shows what overdue looks like.
const RISK_TEXT: [RiskText; 12] = [
    (
        "Habitual co-amoxiclav and cephalosporin use for uncomplicated infections",
        "Practice-level broad-spectrum dashboards at PCN meetings; ICB antimicrobial prescribing guidelines",
        "Out-of-hours prescribers are not yet reached",
        "No audit of urgent treatment centre prescribing",
        "2027-01-31",
    ),
    (
        "Seven-day courses prescribed out of habit where five days are enough",
        "Five-day default courses in the clinical system formulary; AMS audit in every PCN",
        "Default courses not yet set in the second clinical system",
        "Audit results are reported by PCN, not by practice",
        "2027-02-28",
    ),
    (
        "Long-term opioids for chronic non-cancer pain, started years ago and not reviewed",
        "Opioid tapering clinics in the three highest-prescribing PCNs; structured medication reviews",
        "Pain service waiting list delays tapering",
        "No data yet on patients tapered",
        "2026-10-31",
    ),
    (
        "Non-preferred NSAIDs (such as diclofenac) chosen where naproxen or ibuprofen would do",
        "Formulary lists naproxen and ibuprofen first; quarterly searches with community pharmacy",
        "Repeat templates still carry diclofenac in some practices",
        "Community pharmacy referrals are not counted",
        "2027-01-31",
    ),
    (
        "Methotrexate 10 mg tablets prescribed beside 2.5 mg tablets, risking fatal overdose",
        "Only 2.5 mg tablets on formulary; alerts in the prescribing system",
        "Hospital discharge letters can still name 10 mg",
        "No regular check of discharge letters",
        "2027-03-31",
    ),
    (
        "Apixaban and rivaroxaban switches to best-value generics stall",
        "Switch searches run in every practice; PCN pharmacists review patients",
        "Patients on dabigatran need clinic review first",
        "Savings are estimated, not yet measured",
        "2026-12-31",
    ),
    (
        "Community pharmacies close or cut hours in deprived areas",
        "Monitoring of pharmaceutical needs assessment; contract sustainability reviews",
        "No control over commercial closure decisions",
        "Closures are reported late",
        "2027-01-31",
    ),
    (
        "PCN clinical pharmacist posts stay vacant",
        "Joint recruitment campaign with the training hub; rotational posts",
        "Salary gap with community pharmacy",
        "Vacancy data come quarterly",
        "2026-09-30",
    ),
    (
        "Too few designated prescribing practitioners to supervise trainee prescribers",
        "Incentive payments for supervisors; shared supervision across PCNs",
        "Supervisors are concentrated in two PCNs",
        "No register of supervisor capacity",
        "2027-02-28",
    ),
    (
        "National shortages of everyday medicines disrupt care",
        "Shortage bulletins to practices and pharmacies; serious shortage protocols",
        "Little warning of new shortages",
        "Impact on patients is not recorded",
        "2026-12-31",
    ),
    (
        "Acute trust and primary care formularies differ across the boundary",
        "Joint area prescribing committee; shared formulary project",
        "Neighbouring system's formulary not aligned",
        "No audit of discharge prescriptions against formulary",
        "2027-03-31",
    ),
    (
        "Spending on low-priority items (trimipramine, co-proxamol, lidocaine plasters) does not fall",
        "Low-priority dashboard reviewed monthly; deprescribing searches",
        "Specialist initiations continue",
        "Savings realised are not yet tracked in the ledger",
        "2027-01-31",
    ),
];

async fn programme(
    store: &SqlStore,
    icb: &str,
    icb_name: &str,
    neighbour: &str,
    pcns: &[(String, String)],
    outcome: &str,
) -> Result<()> {
    // System map.
    let icb_org = add(
        store,
        "system-org",
        &[
            ("name", icb_name),
            ("org_type", "Integrated care board"),
            ("ods_code", icb),
            ("pharmacy_link", "Hosts the IPMO leadership group and the medicines optimisation team."),
        ],
    )
    .await?;
    let acute = add(store, "system-org", &[("name", "Northgate Hospitals NHS Foundation Trust (fictional)"), ("org_type", "Acute trust"), ("parent", &icb_org), ("pharmacy_link", "Chief pharmacist sits on the IPMO leadership group; discharge medicines service referrals to community pharmacy.")]).await?;
    let mh = add(
        store,
        "system-org",
        &[
            ("name", "Eastvale Mental Health Partnership (fictional)"),
            ("org_type", "Mental health trust"),
            ("parent", &icb_org),
        ],
    )
    .await?;
    let community = add(
        store,
        "system-org",
        &[("name", "Riverside Community Health (fictional)"), ("org_type", "Community trust"), ("parent", &icb_org)],
    )
    .await?;
    for (code, name) in pcns {
        add(
            store,
            "system-org",
            &[
                ("name", name),
                ("org_type", "Primary care network"),
                ("ods_code", code),
                ("parent", &icb_org),
                ("pharmacy_link", "PCN clinical pharmacists (ARRS) do structured medication reviews."),
            ],
        )
        .await?;
    }
    add(
        store,
        "system-org",
        &[
            ("name", "Local Pharmaceutical Committee (fictional)"),
            ("org_type", "Community pharmacy"),
            ("parent", &icb_org),
        ],
    )
    .await?;
    add(
        store,
        "system-org",
        &[("name", "Care home medicines service (fictional)"), ("org_type", "Care home"), ("parent", &community)],
    )
    .await?;
    add(
        store,
        "system-org",
        &[
            ("name", neighbour),
            ("org_type", "Neighbouring system"),
            ("pharmacy_link", "Patients use its acute services; shared formulary work through the regional network."),
        ],
    )
    .await?;

    let cpo = add(store, "person", &[("name", "Dr A. Example"), ("role_title", "ICB chief pharmacist and IPMO lead"), ("organisation", &icb_org), ("role_description", "Leads the system's pharmacy and medicines strategy; chairs the IPMO leadership group; accountable to the ICB chief medical officer.")]).await?;
    let cmo = add(
        store,
        "person",
        &[
            ("name", "Dr B. Sample"),
            ("role_title", "ICB chief medical officer (board sponsor)"),
            ("organisation", &icb_org),
        ],
    )
    .await?;
    add(
        store,
        "person",
        &[
            ("name", "C. Placeholder"),
            ("role_title", "Chief pharmacist, acute trust"),
            ("organisation", &acute),
            ("reports_to", &cmo),
            ("accountable_to", &cpo),
        ],
    )
    .await?;
    add(
        store,
        "person",
        &[
            ("name", "D. Fictional"),
            ("role_title", "Chief pharmacist, mental health trust"),
            ("organisation", &mh),
            ("accountable_to", &cpo),
        ],
    )
    .await?;
    let mso = add(
        store,
        "person",
        &[
            ("name", "E. Invented"),
            ("role_title", "System medication safety officer"),
            ("organisation", &icb_org),
            ("reports_to", &cpo),
        ],
    )
    .await?;
    let ams = add(
        store,
        "person",
        &[
            ("name", "F. Madeup"),
            ("role_title", "Antimicrobial stewardship lead pharmacist"),
            ("organisation", &icb_org),
            ("reports_to", &cpo),
        ],
    )
    .await?;
    let wf = add(
        store,
        "person",
        &[
            ("name", "G. Notreal"),
            ("role_title", "Pharmacy workforce and training lead"),
            ("organisation", &icb_org),
            ("reports_to", &cpo),
        ],
    )
    .await?;

    let board = add(
        store,
        "committee",
        &[("name", "ICB board"), ("group_type", "Board"), ("chair", &cmo), ("cadence", "Monthly")],
    )
    .await?;
    let ipmo = add(
        store,
        "committee",
        &[
            ("name", "IPMO leadership group"),
            ("group_type", "Leadership group"),
            ("purpose", "Leads the integration of pharmacy and medicines optimisation across the system."),
            ("chair", &cpo),
            ("reports_to", &board),
            ("cadence", "Monthly"),
        ],
    )
    .await?;
    let moc = add(
        store,
        "committee",
        &[
            ("name", "Medicines optimisation committee"),
            ("group_type", "Committee"),
            ("chair", &cpo),
            ("reports_to", &ipmo),
            ("cadence", "Bi-monthly"),
        ],
    )
    .await?;
    add(
        store,
        "committee",
        &[
            ("name", "Area prescribing committee"),
            ("group_type", "Committee"),
            ("reports_to", &moc),
            ("cadence", "Monthly"),
        ],
    )
    .await?;
    add(
        store,
        "committee",
        &[
            ("name", "Antimicrobial stewardship group"),
            ("group_type", "Sub-group"),
            ("chair", &ams),
            ("reports_to", &moc),
            ("cadence", "Quarterly"),
        ],
    )
    .await?;
    add(
        store,
        "committee",
        &[
            ("name", "Medication safety group"),
            ("group_type", "Sub-group"),
            ("chair", &mso),
            ("reports_to", &moc),
            ("cadence", "Quarterly"),
        ],
    )
    .await?;
    add(
        store,
        "committee",
        &[
            ("name", "Regional medicines optimisation committee link"),
            ("group_type", "Regional link"),
            ("reports_to", &ipmo),
            ("cadence", "Quarterly"),
        ],
    )
    .await?;
    for (p, c) in [(&cpo, "Chair"), (&mso, "Member"), (&ams, "Member"), (&wf, "Member")] {
        add(store, "membership", &[("person", p), ("committee", &ipmo), ("capacity", c)]).await?;
    }

    // Nine aims, after the shape of an ICS strategy for pharmacy and medicines 2024–2026.
    let aims = [
        ("A workforce strategy for pharmacy and its delivery plan", "G. Notreal", "In progress", "Amber", ""),
        (
            "A system process for medicines value that reduces health inequalities",
            "Dr A. Example",
            "In progress",
            "Green",
            "doacs_not_best_value, generic_prescribing, lp_omnibus",
        ),
        (
            "Pharmacy leadership and governance developed through distributive leadership",
            "Dr A. Example",
            "In progress",
            "Green",
            "",
        ),
        (
            "A rolling programme of cost efficiency from annual horizon scanning",
            "Dr A. Example",
            "Not started",
            "Amber",
            "lp_omnibus",
        ),
        ("Shared system priorities for medicines and a common plan", "Dr A. Example", "Complete", "Green", ""),
        (
            "A system-wide approach to antimicrobial stewardship",
            "F. Madeup",
            "In progress",
            "Amber",
            "broad_spectrum, antibacterials_per_star_pu, amoxicillin_500_capsules_per_item",
        ),
        (
            "An integrated approach to medicines safety",
            "E. Invented",
            "In progress",
            "Amber",
            "non_preferred_nsaids, methotrexate_10mg, opioid_ome_per_1000",
        ),
        ("Medicines optimisation that reaches every prescribing profession", "G. Notreal", "Not started", "Red", ""),
        (
            "Consistent care across system boundaries with neighbouring systems",
            "Dr A. Example",
            "In progress",
            "Amber",
            "",
        ),
    ];
    let mut aim_refs = Vec::new();
    for (title, owner, status, rag, measures) in aims {
        aim_refs.push(
            add(
                store,
                "aim",
                &[("title", title), ("owner", owner), ("status", status), ("rag", rag), ("measures", measures)],
            )
            .await?,
        );
    }
    for (n, title, measures) in [
        ("2", "Addressing low priority prescribing", "lp_omnibus"),
        ("8", "Blood glucose and ketone meters and testing strips", "glucose_strip_cost_per_item"),
        ("9", "Identifying patients with AF and using best value DOACs", "doacs_not_best_value"),
        (
            "11",
            "Improving respiratory outcomes while reducing inhaler carbon emissions",
            "mdi_share_excluding_salbutamol, salbutamol_carbon_per_inhaler",
        ),
        ("14", "Reducing course length of antimicrobial prescribing", "amoxicillin_500_capsules_per_item"),
        ("15", "Reducing opioid use in chronic non-cancer pain", "opioid_ome_per_1000"),
    ] {
        add(
            store,
            "opportunity",
            &[("number", n), ("title", title), ("lead", "Dr A. Example"), ("measures", measures)],
        )
        .await?;
    }
    let ws = [
        (
            "Antibiotic course length and broad-spectrum reduction",
            "National priorities",
            &aim_refs[5],
            "F. Madeup",
            "broad_spectrum, amoxicillin_500_capsules_per_item",
            "Amber",
        ),
        (
            "Best-value DOACs and low-priority items",
            "National priorities",
            &aim_refs[1],
            "Dr A. Example",
            "doacs_not_best_value, lp_omnibus",
            "Green",
        ),
        (
            "Medicines safety: NSAIDs, methotrexate, opioids",
            "National priorities",
            &aim_refs[6],
            "E. Invented",
            "non_preferred_nsaids, opioid_ome_per_1000",
            "Amber",
        ),
        ("Independent prescribing in every sector", "Workforce", &aim_refs[0], "G. Notreal", "", "Amber"),
        ("Foundation trainee pharmacists across sectors", "Workforce", &aim_refs[0], "G. Notreal", "", "Green"),
        ("Non-medical prescriber network", "Workforce", &aim_refs[7], "G. Notreal", "", "Red"),
    ];
    let mut ws_refs = Vec::new();
    for (title, plan, aim, owner, measures, rag) in ws {
        ws_refs.push(
            add(
                store,
                "workstream",
                &[
                    ("title", title),
                    ("plan", plan),
                    ("aim", aim),
                    ("owner", owner),
                    ("measures", measures),
                    ("rag", rag),
                    ("start", "2024-04-01"),
                    ("end", "2026-03-31"),
                ],
            )
            .await?,
        );
    }
    for (title, w, due, status) in [
        ("AMS audit of 5-day courses in every PCN", 0, "2025-09-30", "Complete"),
        ("Broad-spectrum share below 10% in every PCN", 0, "2026-09-30", "In progress"),
        ("DOAC switch searches run in all practices", 1, "2025-06-30", "Complete"),
        ("Shared NSAID safety search with community pharmacy", 2, "2026-12-31", "In progress"),
        ("Independent prescribing course places for 30 pharmacists", 3, "2027-03-31", "In progress"),
        ("Multi-sector foundation training rotations agreed", 4, "2025-07-31", "Complete"),
        ("First non-medical prescriber forum", 5, "2027-01-31", "Not started"),
    ] {
        add(
            store,
            "milestone",
            &[
                ("title", title),
                ("workstream", &ws_refs[w]),
                ("owner", "Programme office"),
                ("due", due),
                ("status", status),
            ],
        )
        .await?;
    }

    // Stakeholders and engagement.
    let stakeholders = [
        ("ICB board", "ICB", "5", "3", "Committee", "Quarterly"),
        ("Local Medical Committee", "General practice and PCNs", "4", "4", "Meeting", "Monthly"),
        ("Local Pharmaceutical Committee", "Community pharmacy", "3", "5", "Meeting", "Monthly"),
        ("Acute trust chief pharmacists", "Acute trust", "4", "5", "Committee", "Monthly"),
        ("Patients and carers forum", "System-wide", "2", "4", "Workshop", "Twice a year"),
        ("Care home providers", "Care homes", "2", "3", "Newsletter", "Quarterly"),
        ("Local authority public health", "System-wide", "3", "2", "Email", "Quarterly"),
        ("Training hub", "General practice and PCNs", "2", "5", "Meeting", "Monthly"),
        ("Regional pharmacy workforce lead", "System-wide", "4", "2", "Meeting", "Quarterly"),
        ("Neighbouring ICB medicines team", "System-wide", "3", "3", "Network event", "Quarterly"),
    ];
    let mut stk = Vec::new();
    for (name, sector, power, interest, method, freq) in stakeholders {
        stk.push(
            add(
                store,
                "stakeholder",
                &[
                    ("name", name),
                    ("sector", sector),
                    ("power", power),
                    ("interest", interest),
                    ("method", method),
                    ("frequency", freq),
                    ("owner", "Dr A. Example"),
                ],
            )
            .await?,
        );
    }
    for (s, date, summary) in [
        (1, "2025-10-02", "Agreed joint approach to DOAC switches and the shared safety searches."),
        (
            2,
            "2025-10-15",
            "Presented the community pharmacy role in the AMS workstream; agreed pharmacy first data sharing.",
        ),
        (4, "2025-11-05", "Patient forum reviewed the opioid reduction leaflet."),
    ] {
        add(
            store,
            "engagement",
            &[
                ("stakeholder", &stk[s]),
                ("date", date),
                ("method", "Meeting"),
                ("summary", summary),
                ("by", "Dr A. Example"),
            ],
        )
        .await?;
    }

    // Risks, a dozen, some watching the ICB's measures.
    let risks: [DemoRisk; 12] = [
        (
            "Broad-spectrum antibiotic use stays high",
            "System-wide",
            5,
            ["4", "4", "3", "4", "2", "3"],
            &[
                ("broad_spectrum", "Assurance: consistently fails target"),
                ("broad_spectrum", "SPC special cause of concern"),
            ],
        ),
        (
            "Antibiotic courses longer than guidance",
            "General practice and PCNs",
            5,
            ["4", "3", "3", "3", "2", "3"],
            &[("amoxicillin_500_capsules_per_item", "Worst decile nationally")],
        ),
        (
            "Opioid prescribing in chronic non-cancer pain",
            "General practice and PCNs",
            6,
            ["4", "5", "3", "4", "2", "4"],
            &[("opioid_ome_per_1000", "CUSUM change for the worse")],
        ),
        (
            "Non-preferred NSAIDs still prescribed",
            "General practice and PCNs",
            6,
            ["3", "4", "3", "4", "2", "4"],
            &[("non_preferred_nsaids", "SPC special cause of concern")],
        ),
        (
            "Methotrexate 10 mg tablets still prescribed",
            "System-wide",
            6,
            ["2", "5", "2", "5", "1", "5"],
            &[("methotrexate_10mg", "Worst decile nationally")],
        ),
        (
            "DOAC savings not realised",
            "ICB",
            1,
            ["4", "3", "3", "3", "2", "2"],
            &[("doacs_not_best_value", "SPC special cause of concern")],
        ),
        ("Community pharmacy closures reduce access", "Community pharmacy", 4, ["3", "4", "3", "4", "2", "3"], &[]),
        (
            "Vacancies in PCN clinical pharmacist roles",
            "General practice and PCNs",
            0,
            ["4", "3", "4", "3", "2", "3"],
            &[],
        ),
        ("Too few designated prescribing practitioners", "System-wide", 0, ["4", "4", "4", "3", "2", "3"], &[]),
        ("Medicines shortages disrupt care", "System-wide", 6, ["4", "4", "4", "3", "3", "3"], &[]),
        ("Inconsistent formularies across the boundary", "Acute trust", 8, ["3", "3", "3", "3", "2", "2"], &[]),
        (
            "Low-priority prescribing does not fall",
            "ICB",
            3,
            ["3", "3", "3", "3", "2", "2"],
            &[("lp_omnibus", "CUSUM change for the worse")],
        ),
    ];
    let mut risk_refs = Vec::new();
    for ((title, sector, aim, s, watches), (cause, controls, gaps, gaps_assurance, review)) in
        risks.into_iter().zip(RISK_TEXT)
    {
        let r = add(
            store,
            "risk",
            &[
                ("title", title),
                ("cause", cause),
                ("event", &format!("{title} across the system")),
                ("effect", "Avoidable harm, resistance or cost, and the aim it threatens is missed"),
                ("sector", sector),
                ("owner", "Dr A. Example"),
                ("aim", &aim_refs[aim]),
                ("inherent_likelihood", s[0]),
                ("inherent_consequence", s[1]),
                ("current_likelihood", s[2]),
                ("current_consequence", s[3]),
                ("target_likelihood", s[4]),
                ("target_consequence", s[5]),
                ("controls", controls),
                ("gaps_in_control", gaps),
                ("gaps_in_assurance", gaps_assurance),
                ("review_date", review),
                ("trend", "Stable"),
            ],
        )
        .await?;
        for (measure, trigger) in watches {
            add(store, "watch", &[("risk", &r), ("org", icb), ("measure", measure), ("trigger", trigger)]).await?;
        }
        risk_refs.push(r);
    }
    for (r, action, due) in [
        (0, "Share practice-level broad-spectrum dashboards at every PCN meeting", "2027-02-28"),
        (2, "Opioid tapering clinics in the three highest-prescribing PCNs", "2026-10-31"),
        (7, "Joint recruitment campaign with the training hub", "2027-01-31"),
    ] {
        add(
            store,
            "risk-action",
            &[
                ("risk", &risk_refs[r]),
                ("action", action),
                ("owner", "Dr A. Example"),
                ("due", due),
                ("status", "In progress"),
            ],
        )
        .await?;
    }
    for (r, source, line, rating) in [
        (
            0,
            "Monthly AMS dashboard to the medicines optimisation committee",
            "1st line: management",
            "Partial assurance",
        ),
        (0, "UKHSA Fingertips AMR indicators reviewed by the AMS group", "2nd line: oversight", "Positive assurance"),
        (2, "Internal audit of controlled drug governance", "3rd line: independent", "Partial assurance"),
        (4, "Medication safety officer's quarterly report", "2nd line: oversight", "Reassurance only"),
    ] {
        add(
            store,
            "assurance-source",
            &[("risk", &risk_refs[r]), ("source", source), ("line", line), ("rating", rating)],
        )
        .await?;
    }
    for (title, aim, risk, measure, target) in [
        ("Broad-spectrum antibiotics at most 10% of antibacterial items", 5, 0, "broad_spectrum", "10"),
        ("Watch and Reserve antibiotics at most 30%", 5, 0, "watch_reserve_percent", "30"),
        ("Amoxicillin 500 mg courses of 15 capsules or fewer", 5, 1, "amoxicillin_500_capsules_per_item", "15"),
        ("DOACs not best value below 20%", 1, 5, "doacs_not_best_value", "20"),
    ] {
        add(
            store,
            "standard",
            &[
                ("title", title),
                ("aim", &aim_refs[aim]),
                ("risk", &risk_refs[risk]),
                ("org", icb),
                ("measure", measure),
                ("target", target),
                ("owner", "Dr A. Example"),
            ],
        )
        .await?;
    }

    // Workforce: the four quarters to 2026-Q3 by sector and role, with a training pipeline.
    let quarters = ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"];
    for (qi, q) in quarters.iter().enumerate() {
        let step = qi as f64;
        for (sector, role, est, post, leavers) in [
            ("Acute trust", "Pharmacist", 120.0, 104.0 + 2.0 * step, 3.0),
            ("Acute trust", "Pharmacy technician", 90.0, 80.0 + step, 2.5),
            ("General practice and PCNs", "PCN clinical pharmacist (ARRS)", 60.0, 48.0 + 2.5 * step, 2.0),
            ("General practice and PCNs", "PCN pharmacy technician (ARRS)", 25.0, 18.0 + step, 1.0),
            ("Community pharmacy", "Pharmacist", 150.0, 128.0 - step, 5.0),
            ("Community pharmacy", "Pharmacist independent prescriber", 20.0, 6.0 + 3.0 * step, 0.0),
            ("Mental health trust", "Pharmacist", 32.0, 26.0 + step, 1.0),
            ("Mental health trust", "Pharmacy technician", 22.0, 19.0, 0.5),
            ("Mental health trust", "Consultant pharmacist", 2.0, 2.0, 0.0),
        ] {
            let post = format!("{post:.1}");
            let headcount = format!("{}", (post.parse::<f64>().unwrap_or(0.0) * 1.15).round());
            add(
                store,
                "workforce-return",
                &[
                    ("quarter", q),
                    ("sector", sector),
                    ("role", role),
                    ("establishment_wte", &format!("{est:.1}")),
                    ("in_post_wte", &post),
                    ("headcount", &headcount),
                    ("leavers_wte", &format!("{leavers:.1}")),
                ],
            )
            .await?;
        }
        for (programme, sector, places, starters, completions) in [
            ("Foundation trainee pharmacist places", "System-wide", "24", "22", if qi == 3 { "20" } else { "0" }),
            ("Independent prescribing course", "Community pharmacy", "10", "8", if qi >= 2 { "4" } else { "0" }),
            ("Designated prescribing practitioners", "General practice and PCNs", "12", "9", "9"),
        ] {
            add(
                store,
                "training",
                &[
                    ("quarter", q),
                    ("programme", programme),
                    ("sector", sector),
                    ("places", places),
                    ("starters", starters),
                    ("completions", completions),
                ],
            )
            .await?;
        }
    }

    // Evidence and decisions.
    add(store, "case-study", &[("title", "A system-wide medicines dashboard"), ("sector", "System-wide"), ("org", icb), ("summary", "Every practice, PCN and the ICB see the same measures monthly, with SPC charts and funnel plots; the IPMO leadership group reviews the alerts."), ("outcome", outcome), ("measures", "broad_spectrum, amoxicillin_500_capsules_per_item"), ("author", "F. Madeup")]).await?;
    add(
        store,
        "case-study",
        &[
            ("title", "Best-value DOAC switching"),
            ("sector", "General practice and PCNs"),
            ("summary", "PCN pharmacists ran searches and reviewed patients on non-preferred DOACs."),
            ("measures", "doacs_not_best_value"),
            ("author", "Dr A. Example"),
        ],
    )
    .await?;
    for (title, date, detail) in [
        (
            "Adopt the shared AMS dashboard as the system's source of truth",
            "2025-04-10",
            "The monthly AMS report uses the IPMO dashboard's measures.",
        ),
        (
            "Choose six national medicines optimisation opportunities",
            "2025-05-08",
            "Opportunities 2, 8, 9, 11, 14 and 15.",
        ),
        (
            "Fund ten independent prescribing places in community pharmacy",
            "2025-07-10",
            "Funded from the workforce development budget.",
        ),
    ] {
        add(
            store,
            "decision",
            &[
                ("title", title),
                ("date", date),
                ("meeting", &ipmo),
                ("detail", detail),
                ("owner", "Dr A. Example"),
                ("status", "Agreed"),
            ],
        )
        .await?;
    }
    Ok(())
}
