//! Text folding shared by every search and deduplication key.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The normalised key of a label or name: Unicode NFKD, accents removed,
/// case folded, punctuation dropped, whitespace collapsed.
///
/// `"  ORIENTACIÓN   legal. "` and `"orientacion legal"` share a key, and so
/// do `"Perú"`, `"PERU"` and `"perú"`. Letters outside Latin (e.g. CJK) are
/// kept. `ß`/`æ`-style ligatures are left as NFKD leaves them.
pub fn fold_key(input: &str) -> String {
    if input.is_ascii() {
        return fold_ascii(input.as_bytes());
    }
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for ch in input.nfkd() {
        if is_combining_mark(ch) {
            continue;
        }
        if ch.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(ch.to_lowercase());
        } else if ch.is_whitespace() || is_word_separator(ch) {
            pending_space = true;
        }
        // other punctuation (. , ; : ' " etc.) is dropped without a space
    }
    out
}

/// [`fold_key`] for ASCII text, byte by byte: NFKD leaves ASCII as it is and
/// it has no combining marks, so the same rules apply without the Unicode
/// tables. Legacy imports fold several values per row, most of them ASCII.
fn fold_ascii(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    for &b in input {
        if b.is_ascii_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else if matches!(b, b'\t'..=b'\r' | b' ') || is_word_separator(char::from(b)) {
            // `char::is_whitespace` over ASCII: tab, LF, VT, FF, CR and space
            pending_space = true;
        }
    }
    out
}

/// Punctuation that separates words rather than decorating them, so
/// "Guinea-Bisáu" folds to "guinea bisau" and "Perez/Quispe" to two words.
fn is_word_separator(ch: char) -> bool {
    matches!(
        ch,
        '-' | '_'
            | '/'
            | '\\'
            | '|'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | ','
            | ';'
            | ':'
            | '+'
            | '&'
    )
}

/// Whitespace as the spec's patterns mean it (`\s` in ECMA-262, the
/// dialect of JSON Schema's `pattern`): Rust's `char::is_whitespace` also
/// counts U+0085 and not U+FEFF, so a text the spec calls non-blank is
/// checked with this, never with `trim()`.
pub fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Escapes `%`, `_` and `\` for a SQL `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for ch in input.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_spaces_are_ecma_262s() {
        // the fuzzer's counter-example: U+0085 is a character to the spec
        assert!(!is_pattern_space('\u{85}'));
        assert!('\u{85}'.is_whitespace());
        assert!(is_pattern_space('\u{feff}'));
        assert!(is_pattern_space('\u{b}') && is_pattern_space('\u{3000}'));
        assert!(!is_pattern_space('x'));
    }

    #[test]
    fn folds_accents_case_punctuation_and_spaces() {
        assert_eq!(fold_key("  ORIENTACIÓN   legal. "), "orientacion legal");
        assert_eq!(fold_key("Orientación legal"), "orientacion legal");
        assert_eq!(fold_key("Perú"), "peru");
        assert_eq!(fold_key("Côte d'Ivoire"), "cote divoire");
        assert_eq!(fold_key("Guinea-Bisáu"), "guinea bisau");
        assert_eq!(fold_key("Pérez Quispe, José"), "perez quispe jose");
        assert_eq!(fold_key("Åland"), "aland");
        assert_eq!(fold_key("...").len(), 0);
    }

    /// The general path, forced, to compare the ASCII fast path against.
    fn fold_general(input: &str) -> String {
        // a non-ASCII character that folds to nothing keeps `fold_key` off
        // the fast path without changing the result
        let folded = fold_key(&format!("{input}\u{301}"));
        assert!(!format!("{input}\u{301}").is_ascii());
        folded
    }

    #[test]
    fn ascii_fast_path_folds_as_the_unicode_path() {
        for b in 0u8..128 {
            let c = char::from(b);
            for sample in [
                format!("{c}"),
                format!("a{c}b"),
                format!("A {c} B"),
                format!("{c}{c}x{c}"),
                format!("Per{c}u  Lima{c}"),
            ] {
                assert_eq!(
                    fold_key(&sample),
                    fold_general(&sample),
                    "byte {b} in {sample:?}"
                );
            }
        }
        assert_eq!(fold_key("  CITA\telectronica--X "), "cita electronica x");
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
