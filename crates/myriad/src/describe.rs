//! `myriad describe MODEL`: a model's parameters, metrics, decisions,
//! agent states, control (observation, actions, reward) and the population
//! columns it reads.

/// The description as text.
pub fn describe(m: &myriad_core::model::ModelSpec) -> String {
    let mut s = format!(
        "{} — {}\n\n{}\n\nParameters ([params] in a scenario):\n",
        m.name, m.summary, m.description
    );
    for p in (m.params)() {
        s.push_str(&format!(
            "  {:<24} default {:<12} {}\n",
            p.name,
            p.default.to_string(),
            if p.unit.is_empty() {
                String::new()
            } else {
                format!("[{}]", p.unit)
            }
        ));
        s.push_str(&format!("  {:<24} {}; {}\n", "", p.range_text(), p.doc));
    }
    s.push_str(if m.splits {
        "\nPartitioned runs: yes (mpirun -n R myriad run, with the mpi feature; checkpoints with --checkpoint-every)\n"
    } else {
        "\nPartitioned runs: no (one process)\n"
    });
    s.push_str("\nMetrics (columns of timeseries.csv after `step`):\n");
    for mt in (m.metrics)() {
        s.push_str(&format!("  {:<24} {}\n", mt.name, mt.doc));
    }
    if !m.decisions.is_empty() {
        s.push_str("\nDecisions an LLM can make instead of the rule ([behaviour] provider = \"llm\", [behaviour.<name>] prompt = ...):\n");
        for d in m.decisions {
            s.push_str(&format!("  {:<24} {}\n", d.name, d.doc));
        }
        if !m.states.is_empty() {
            s.push_str("\nAgent states prompts may mention (archetypes are regrouped by them each period):\n");
            for (name, doc) in m.states {
                s.push_str(&format!(
                    "  {{{name}}}{:<w$} {doc}\n",
                    "",
                    w = 22usize.saturating_sub(name.len())
                ));
            }
        }
    }
    if let Some(c) = m.control {
        s.push_str("\nControl (the same model under its rule, [behaviour] provider = \"controller\", or provider = \"policy\" with policy = \"FILE.safetensors\" from `myriad train`):\n");
        s.push_str(&format!("  {:<24} {}\n", "observation", c.observation.join(", ")));
        for a in c.actions {
            s.push_str(&format!("  {:<24} {}\n", format!("action {}", a.name), a.doc));
        }
        s.push_str(&format!("  {:<24} {}\n", "reward", c.reward));
        s.push_str(&format!("  {:<24} {}\n", "controller", c.controller_doc));
    }
    if !m.columns.is_empty() {
        s.push_str("\nPopulation columns read when present:\n");
        for c in m.columns {
            s.push_str(&format!("  {:<24} {}\n", c.name, c.doc));
        }
    }
    s
}
