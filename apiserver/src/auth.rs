//! Bearer-token authentication from a kube-apiserver style token file
//! (`token,user,uid,"group1,group2"` per line).

use std::collections::HashMap;
use std::path::Path;

/// The identity a token authenticates as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Known tokens. An empty set disables authentication (every request is anonymous-allowed).
#[derive(Clone, Debug, Default)]
pub struct TokenAuth {
    tokens: HashMap<String, UserInfo>,
}

/// A malformed token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token file line {line}: {message}")]
    Parse { line: usize, message: String },
}

/// Splits one CSV line, honouring double quotes.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    fields.push(current);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

impl TokenAuth {
    /// No tokens: authentication disabled.
    pub fn disabled() -> Self {
        TokenAuth::default()
    }

    /// Adds a token for a user.
    pub fn insert(&mut self, token: impl Into<String>, user: UserInfo) {
        self.tokens.insert(token.into(), user);
    }

    /// Parses token-file contents.
    pub fn parse(contents: &str) -> Result<Self, TokenFileError> {
        let mut auth = TokenAuth::default();
        for (i, line) in contents.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = csv_fields(line);
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(TokenFileError::Parse {
                    line: i + 1,
                    message: "want token,user,uid[,\"groups\"]".into(),
                });
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            auth.insert(
                fields[0].clone(),
                UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            );
        }
        Ok(auth)
    }

    /// Loads a token file.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let contents = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        TokenAuth::parse(&contents)
    }

    /// Whether authentication is enforced.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The user an `Authorization` header value authenticates, if any.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&UserInfo> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token)
    }
}

/// A random token suitable for an admin credential.
pub fn random_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_file() {
        let auth = TokenAuth::parse("# comment\nabc,admin,1,\"system:masters,ops\"\nxyz,bob,2\n")
            .expect("parse");
        let admin = auth.authenticate(Some("Bearer abc")).expect("admin");
        assert_eq!(admin.groups, vec!["system:masters", "ops"]);
        assert_eq!(
            auth.authenticate(Some("Bearer xyz")).expect("bob").name,
            "bob"
        );
        assert!(auth.authenticate(Some("Bearer nope")).is_none());
        assert!(auth.authenticate(None).is_none());
        assert!(TokenAuth::parse("onlytoken\n").is_err());
    }
}
