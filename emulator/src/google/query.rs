//! The `q` search language of `files.list`, in the forms the jobs use: terms joined by `and`
//! (and `or`, `not` and parentheses, which cost little once there is a parser).
//!
//! Terms: `'ID' in parents`, `trashed = false`, `name = '…'` / `name != '…'` /
//! `name contains '…'`, `mimeType = '…'` / `mimeType != '…'`,
//! `appProperties has { key='k' and value='v' }`. Strings use `\'` and `\\` escapes.

use crate::google::tree::DriveFile;

/// A parsed `q` expression.
#[derive(Debug, PartialEq)]
pub(crate) enum Query {
    InParents(String),
    Trashed(bool),
    Name(Comparison, String),
    MimeType(Comparison, String),
    AppProperty { key: String, value: String },
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
}

#[derive(Debug, PartialEq, Clone, Copy)]
pub(crate) enum Comparison {
    Equal,
    NotEqual,
    Contains,
}

impl Comparison {
    fn holds(self, actual: &str, expected: &str) -> bool {
        match self {
            Comparison::Equal => actual == expected,
            Comparison::NotEqual => actual != expected,
            Comparison::Contains => actual.contains(expected),
        }
    }
}

impl Query {
    pub(crate) fn parse(text: &str) -> Result<Query, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            position: 0,
        };
        let query = parser.or_expression()?;
        match parser.peek() {
            None => Ok(query),
            Some(token) => Err(format!("unexpected {token:?}")),
        }
    }

    pub(crate) fn matches(&self, file: &DriveFile) -> bool {
        match self {
            Query::InParents(id) => file.parents.iter().any(|p| p == id),
            Query::Trashed(trashed) => file.trashed == *trashed,
            Query::Name(comparison, name) => comparison.holds(&file.name, name),
            Query::MimeType(comparison, mime) => comparison.holds(&file.mime_type, mime),
            Query::AppProperty { key, value } => file.app_properties.get(key) == Some(value),
            Query::And(a, b) => a.matches(file) && b.matches(file),
            Query::Or(a, b) => a.matches(file) || b.matches(file),
            Query::Not(a) => !a.matches(file),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Symbol(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(escaped) => value.push(escaped),
                        None => return Err("unterminated escape".into()),
                    },
                    Some('\'') => break,
                    Some(other) => value.push(other),
                    None => return Err("unterminated string".into()),
                }
            }
            tokens.push(Token::Text(value));
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&w) = chars.peek() {
                if w.is_alphanumeric() || w == '_' {
                    word.push(w);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(word));
        } else {
            chars.next();
            let symbol = match c {
                '=' => "=",
                '!' if chars.peek() == Some(&'=') => {
                    chars.next();
                    "!="
                }
                '{' => "{",
                '}' => "}",
                '(' => "(",
                ')' => ")",
                other => return Err(format!("unexpected character {other:?}")),
            };
            tokens.push(Token::Symbol(symbol));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .ok_or_else(|| "unexpected end of query".to_string())?;
        self.position += 1;
        Ok(token)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), String> {
        match self.next()? {
            Token::Word(w) if w.eq_ignore_ascii_case(keyword) => Ok(()),
            other => Err(format!("expected {keyword}, found {other:?}")),
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), String> {
        match self.next()? {
            Token::Symbol(s) if s == symbol => Ok(()),
            other => Err(format!("expected {symbol}, found {other:?}")),
        }
    }

    fn text(&mut self) -> Result<String, String> {
        match self.next()? {
            Token::Text(t) => Ok(t),
            other => Err(format!("expected a quoted string, found {other:?}")),
        }
    }

    fn or_expression(&mut self) -> Result<Query, String> {
        let mut query = self.and_expression()?;
        while self.peek_keyword("or") {
            self.position += 1;
            query = Query::Or(Box::new(query), Box::new(self.and_expression()?));
        }
        Ok(query)
    }

    fn and_expression(&mut self) -> Result<Query, String> {
        let mut query = self.unary()?;
        while self.peek_keyword("and") {
            self.position += 1;
            query = Query::And(Box::new(query), Box::new(self.unary()?));
        }
        Ok(query)
    }

    fn unary(&mut self) -> Result<Query, String> {
        if self.peek_keyword("not") {
            self.position += 1;
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Symbol("(")) {
            self.position += 1;
            let query = self.or_expression()?;
            self.expect_symbol(")")?;
            return Ok(query);
        }
        self.term()
    }

    fn comparison(&mut self, allow_contains: bool) -> Result<Comparison, String> {
        match self.next()? {
            Token::Symbol("=") => Ok(Comparison::Equal),
            Token::Symbol("!=") => Ok(Comparison::NotEqual),
            Token::Word(w) if allow_contains && w == "contains" => Ok(Comparison::Contains),
            other => Err(format!("expected an operator, found {other:?}")),
        }
    }

    fn term(&mut self) -> Result<Query, String> {
        match self.next()? {
            Token::Text(id) => {
                self.expect_keyword("in")?;
                self.expect_keyword("parents")?;
                Ok(Query::InParents(id))
            }
            Token::Word(field) if field == "trashed" => {
                let comparison = self.comparison(false)?;
                let value = match self.next()? {
                    Token::Word(w) if w == "true" => true,
                    Token::Word(w) if w == "false" => false,
                    other => return Err(format!("expected true or false, found {other:?}")),
                };
                Ok(Query::Trashed(match comparison {
                    Comparison::NotEqual => !value,
                    _ => value,
                }))
            }
            Token::Word(field) if field == "name" => {
                let comparison = self.comparison(true)?;
                Ok(Query::Name(comparison, self.text()?))
            }
            Token::Word(field) if field == "mimeType" => {
                let comparison = self.comparison(true)?;
                Ok(Query::MimeType(comparison, self.text()?))
            }
            Token::Word(field) if field == "appProperties" => {
                self.expect_keyword("has")?;
                self.expect_symbol("{")?;
                self.expect_keyword("key")?;
                self.expect_symbol("=")?;
                let key = self.text()?;
                self.expect_keyword("and")?;
                self.expect_keyword("value")?;
                self.expect_symbol("=")?;
                let value = self.text()?;
                self.expect_symbol("}")?;
                Ok(Query::AppProperty { key, value })
            }
            other => Err(format!("unsupported term starting with {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, mime: &str, parent: &str, trashed: bool) -> DriveFile {
        let mut f = DriveFile::new("1id", name, mime, Vec::new());
        f.parents = vec![parent.to_string()];
        f.trashed = trashed;
        f
    }

    #[test]
    fn the_listing_query_of_the_jobs() {
        let q = Query::parse(
            "'1abc' in parents and trashed=false and mimeType != 'application/vnd.google-apps.folder'",
        )
        .unwrap();
        assert!(q.matches(&file("a.pdf", "application/pdf", "1abc", false)));
        assert!(!q.matches(&file("a.pdf", "application/pdf", "1abc", true)));
        assert!(!q.matches(&file("a.pdf", "application/pdf", "1other", false)));
        assert!(!q.matches(&file(
            "d",
            "application/vnd.google-apps.folder",
            "1abc",
            false
        )));
    }

    #[test]
    fn escaped_names_and_app_properties() {
        let q = Query::parse(
            "name = 'Bob\\'s \\\\ report' and appProperties has { key='run_id' and value='r-1' } and trashed = false",
        )
        .unwrap();
        let mut f = file("Bob's \\ report", "text/markdown", "1p", false);
        assert!(!q.matches(&f));
        f.app_properties.insert("run_id".into(), "r-1".into());
        assert!(q.matches(&f));
        f.app_properties.insert("run_id".into(), "r-2".into());
        assert!(!q.matches(&f));
    }

    #[test]
    fn or_not_and_parentheses() {
        let q = Query::parse("not (name contains 'x' or name = 'y')").unwrap();
        assert!(q.matches(&file("abc", "text/plain", "1p", false)));
        assert!(!q.matches(&file("axc", "text/plain", "1p", false)));
        assert!(!q.matches(&file("y", "text/plain", "1p", false)));
    }

    #[test]
    fn malformed_queries_are_rejected() {
        for bad in [
            "name = ",
            "'1abc' in",
            "trashed = maybe",
            "name = 'open",
            "size > 3",
            "a = 'b' c",
        ] {
            assert!(Query::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
