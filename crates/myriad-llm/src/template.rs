//! Prompt templates: text with `{name}` placeholders filled from agent
//! attributes and model observations. `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Slot(String),
}

/// A template error, naming the placeholder or position.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    /// `{` without a matching `}`, or an empty or malformed name.
    #[error("template: {0}")]
    Syntax(String),
    /// A placeholder with no value.
    #[error("template placeholder '{{{name}}}' has no value (known: {known})")]
    Missing {
        /// The placeholder.
        name: String,
        /// The names that have values.
        known: String,
    },
}

impl Template {
    /// Parse a template.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, ch)) if ch.is_alphanumeric() || ch == '_' => name.push(ch),
                            Some((j, ch)) => {
                                return Err(TemplateError::Syntax(format!(
                                    "unexpected '{ch}' at byte {j} inside a placeholder (names use letters, digits and _; write {{{{ for a literal brace)"
                                )))
                            }
                            None => {
                                return Err(TemplateError::Syntax(format!(
                                    "'{{' at byte {i} is never closed"
                                )))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(TemplateError::Syntax(format!("empty placeholder at byte {i}")));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Slot(name));
                }
                '}' => {
                    return Err(TemplateError::Syntax(format!(
                        "'}}' at byte {i} closes nothing (write }}}} for a literal brace)"
                    )))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Placeholder names in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let Part::Slot(n) = p {
                if !seen.contains(&n.as_str()) {
                    seen.push(n);
                }
            }
        }
        seen
    }

    /// Fill every placeholder.
    pub fn fill(&self, values: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        self.fill_layered(&[values])
    }

    /// Fill every placeholder from the first of `layers` that has it, so
    /// that values shared by many prompts need not be copied into each.
    pub fn fill_layered(&self, layers: &[&BTreeMap<String, String>]) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.parts.len() * 16);
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Slot(n) => match layers.iter().find_map(|l| l.get(n)) {
                    Some(v) => out.push_str(v),
                    None => {
                        let known: std::collections::BTreeSet<&String> = layers.iter().flat_map(|l| l.keys()).collect();
                        return Err(TemplateError::Missing {
                            name: n.clone(),
                            known: known.into_iter().cloned().collect::<Vec<_>>().join(", "),
                        });
                    }
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_keeps_escaped_braces() {
        let t = Template::parse("You are {age_group} in {borough}. Cases: {cases}. JSON: {{\"ok\": 1}}").unwrap();
        assert_eq!(t.placeholders(), ["age_group", "borough", "cases"]);
        let v: BTreeMap<String, String> = [("age_group", "20t29"), ("borough", "BK"), ("cases", "120")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            t.fill(&v).unwrap(),
            "You are 20t29 in BK. Cases: 120. JSON: {\"ok\": 1}"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(Template::parse("a {b"), Err(TemplateError::Syntax(m)) if m.contains("never closed")));
        assert!(matches!(Template::parse("a {} b"), Err(TemplateError::Syntax(m)) if m.contains("empty")));
        assert!(matches!(Template::parse("a } b"), Err(TemplateError::Syntax(_))));
        let t = Template::parse("{x} {y}").unwrap();
        let v: BTreeMap<String, String> = [("x".to_string(), "1".to_string())].into();
        assert_eq!(
            t.fill(&v),
            Err(TemplateError::Missing {
                name: "y".into(),
                known: "x".into()
            })
        );
    }
}
