//! String templates with `{name}` placeholders, parsed once at load time. A brace group that is
//! not a plain identifier (RFC 6570 forms such as `{/member}`) is kept literally.

/// A piece of a template: literal text, or a placeholder's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    literal_len: usize,
}

impl Template {
    /// Parses a template once; RFC 6570 groups such as `{/member}` stay literal.
    ///
    /// ```
    /// use forgebridge::mapping::Template;
    /// let t = Template::parse("{api}/orgs/{login}/members{/member}");
    /// assert_eq!(t.vars().collect::<Vec<_>>(), ["api", "login"]);
    /// let url = t.render(|v| Some(std::borrow::Cow::Borrowed(if v == "api" { "http://p/api/v3" } else { "acme" })));
    /// assert_eq!(url, "http://p/api/v3/orgs/acme/members{/member}");
    /// ```
    pub fn parse(text: &str) -> Template {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            lit.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) if is_ident(&after[..close]) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(after[..close].to_string()));
                    rest = &after[close + 1..];
                }
                _ => {
                    lit.push('{');
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => s.len(),
                Part::Var(_) => 0,
            })
            .sum();
        Template { parts, literal_len }
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// The template's pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Renders the template; `lookup` answers each placeholder (None renders as empty).
    pub fn render<'a>(
        &self,
        mut lookup: impl FnMut(&str) -> Option<std::borrow::Cow<'a, str>>,
    ) -> String {
        let mut out = String::with_capacity(self.literal_len + 64);
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => {
                    if let Some(value) = lookup(v) {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn keeps_rfc6570_groups_literal() {
        let t = Template::parse("{api}/orgs/{login}/members{/member}");
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["api", "login"]);
        let out = t.render(|v| Some(Cow::Owned(format!("<{v}>"))));
        assert_eq!(out, "<api>/orgs/<login>/members{/member}");
    }
}
