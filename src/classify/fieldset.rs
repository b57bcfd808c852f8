//! The patterns of all rules that read one field, compiled into one automaton, so that a
//! message's subject, body, … are each scanned once however many rules look at them.
//!
//! Unicode word boundaries (`\b` next to umlauts must work) are the difficulty: regex-automata's
//! DFAs cannot evaluate them on non-ASCII text, and German text is never ASCII. A word boundary
//! only looks at the characters on either side, though, and in nearly every rule one side is part
//! of the pattern and known: the `f` of `\bfehler` is a word character, so the `\b` before it
//! holds exactly when the character before is not one. Such an assertion becomes a constant
//! where both sides are known, and where one side is the edge of the pattern the character
//! beyond is consumed instead of looked at: `\bfehler` matches somewhere exactly when
//! `(?:^|\W)fehler` does, and whether it matches is all a rule asks.
//!
//! Unicode's `\W` is a large class, though (hundreds of NFA states in UTF-8, for each use), and a
//! few hundred of them make the automaton too large to compile. So each such pattern enters the
//! automaton twice, bracketing it: once with only ASCII characters beyond its edges (a subset
//! of the pattern: when it matches, the pattern does) and once where any non-ASCII character
//! may stand there (a superset: when it does not match, the pattern does not). Only when the
//! superset matches and the subset does not — the word stands next to a non-ASCII character
//! such as „ or an umlaut — is the pattern's own regex run to decide.
//!
//! A pattern whose word boundary cannot be rewritten (between two parts that may each end or
//! start with a letter or not) enters with its word boundaries removed, a superset, and is
//! confirmed the same way whenever that matches.
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind, PatternID, hybrid};
use regex_syntax::ParserBuilder;
use regex_syntax::hir::{Capture, Class, ClassUnicode, Hir, HirKind, Look, Repetition};

use super::rules::Field;

/// Most memory the determinized states of one field take, per thread. The body patterns of a
/// few hundred helpdesk rules reach about 3 MB on German mail.
const DFA_CACHE: usize = 16 << 20;

/// All patterns that read one field.
#[derive(Debug, Clone)]
pub struct FieldSet {
    pub field: Field,
    pub patterns: Vec<String>,
    /// `None` when the set is empty.
    engine: Option<Engine>,
    /// What each pattern of the automaton stands for.
    entries: Vec<Entry>,
    /// The exact regex of each pattern that has an entry needing confirmation.
    exact: Vec<Option<Regex>>,
}

/// One pattern of the automaton.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Index of the rule pattern in [`FieldSet::patterns`].
    pattern: usize,
    /// A match decides that the rule pattern matches; else the exact regex must confirm it.
    decides: bool,
}

/// The automaton that finds every pattern of a field in one pass: regex-automata's lazy DFA,
/// which determinizes only the states a text leads to. (A fully compiled DFA of the body
/// patterns of a few hundred rules takes seconds to build; the states mail actually reaches
/// are a small part of it.)
struct Engine {
    dfa: hybrid::dfa::DFA,
    /// One cache of determinized states per thread that classifies.
    caches: Pool<hybrid::dfa::Cache, CacheFn>,
}

type CacheFn = Box<dyn Fn() -> hybrid::dfa::Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

impl FieldSet {
    /// Compiles the patterns of one field (case-insensitive unless a pattern says otherwise).
    pub fn new(field: Field, patterns: Vec<String>) -> Result<FieldSet, String> {
        let mut hirs = Vec::with_capacity(patterns.len());
        let mut entries = Vec::with_capacity(patterns.len());
        let mut exact = Vec::with_capacity(patterns.len());
        for (pattern, p) in patterns.iter().enumerate() {
            let hir = ParserBuilder::new()
                .case_insensitive(true)
                .build()
                .parse(p)
                .map_err(|e| e.to_string())?;
            if !has_word_look(&hir) {
                hirs.push(hir);
                entries.push(Entry {
                    pattern,
                    decides: true,
                });
                exact.push(None);
                continue;
            }
            match bounds(&hir) {
                Some((subset, superset)) => {
                    hirs.push(subset);
                    entries.push(Entry {
                        pattern,
                        decides: true,
                    });
                    hirs.push(superset);
                }
                None => hirs.push(strip_word_looks(&hir)),
            }
            entries.push(Entry {
                pattern,
                decides: false,
            });
            exact.push(Some(compile_one(p).map_err(|e| e.to_string())?));
        }
        Ok(FieldSet {
            field,
            patterns,
            engine: Some(Engine::new(&hirs)?),
            entries,
            exact,
        })
    }

    /// A set that matches nothing (for a field whose patterns failed to compile).
    pub fn empty(field: Field) -> FieldSet {
        FieldSet {
            field,
            patterns: Vec::new(),
            engine: None,
            entries: Vec::new(),
            exact: Vec::new(),
        }
    }

    /// How the set is run, for a person: the automaton, its size, and how many patterns may
    /// need their own regex.
    pub fn summary(&self) -> String {
        let bounded = self.exact.iter().filter(|c| c.is_some()).count();
        let stripped = bounded - (self.entries.len() - self.patterns.len());
        let engine = match &self.engine {
            Some(engine) => format!(
                "{} automaton patterns, lazy DFA of {} KiB + cache",
                self.entries.len(),
                engine.memory_usage() / 1024
            ),
            None => "no automaton".to_string(),
        };
        format!(
            "{engine}; {bounded} with word boundaries, {stripped} of them confirmed by their own regex"
        )
    }

    /// Sets `found[i]` for every pattern `i` of this field that matches `haystack`
    /// (`found` has one entry per pattern). `pending` is scratch space for patterns that need
    /// their own regex; it is left empty.
    pub fn mark(&self, haystack: &str, found: &mut [bool], pending: &mut Vec<usize>) {
        let Some(engine) = &self.engine else {
            return;
        };
        let scan = engine.for_each_match(haystack, |id| {
            let entry = self.entries[id.as_usize()];
            if entry.decides {
                found[entry.pattern] = true;
            } else if !pending.contains(&entry.pattern) {
                pending.push(entry.pattern);
            }
        });
        if scan.is_err() {
            pending.clear();
            self.mark_one_by_one(haystack, found);
            return;
        }
        // Only now, so that a pattern whose subset bound matched anywhere is not run again.
        for pattern in pending.drain(..) {
            if found[pattern] {
                continue;
            }
            if let Some(exact) = &self.exact[pattern]
                && exact.is_match(haystack)
            {
                found[pattern] = true;
            }
        }
    }

    /// What [`FieldSet::mark`] does, the slow way: each pattern's own regex on its own.
    fn mark_one_by_one(&self, haystack: &str, found: &mut [bool]) {
        for (i, p) in self.patterns.iter().enumerate() {
            // Every pattern compiled when the rules were loaded.
            if compile_one(p).is_ok_and(|re| re.is_match(haystack)) {
                found[i] = true;
            }
        }
    }
}

impl Engine {
    fn new(hirs: &[Hir]) -> Result<Engine, String> {
        // Capture groups mean nothing to a yes/no question; leaving them out keeps the NFA small.
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
            .build_many_from_hir(hirs)
            .map_err(|e| e.to_string())?;
        let dfa = hybrid::dfa::Builder::new()
            .configure(
                hybrid::dfa::DFA::config()
                    // Every pattern that matches, not only the first or the leftmost.
                    .match_kind(MatchKind::All)
                    .starts_for_each_pattern(false)
                    .cache_capacity(DFA_CACHE)
                    // Never give up on a text, however many states it needs: a full cache is
                    // cleared and filled again.
                    .minimum_cache_clear_count(None),
            )
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        Ok(Engine::with_dfa(dfa))
    }

    fn with_dfa(dfa: hybrid::dfa::DFA) -> Engine {
        let for_caches = dfa.clone();
        let create: CacheFn = Box::new(move || for_caches.create_cache());
        Engine {
            dfa,
            caches: Pool::new(create),
        }
    }

    /// Calls `on_match` with every pattern of the automaton that matches somewhere in
    /// `haystack` (some more than once). Errs only if the lazy DFA gave up, which its
    /// configuration rules out.
    fn for_each_match(
        &self,
        haystack: &str,
        mut on_match: impl FnMut(PatternID),
    ) -> Result<(), GaveUp> {
        // The automaton walked byte by byte, collecting the patterns of every match state it
        // passes: one pass, without the restarts of an overlapping search.
        let dfa = &self.dfa;
        let mut cache = self.caches.get();
        let cache = &mut *cache;
        let mut sid = dfa
            .start_state_forward(cache, &Input::new(haystack))
            .map_err(|_| GaveUp)?;
        let bytes = haystack.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            // Four ordinary transitions a round while they last: most of a mail's text walks
            // through states that match nothing, and a round costs one bounds test instead
            // of four.
            while !sid.is_tagged()
                && let Some(&[b0, b1, b2, b3]) = bytes.get(at..at + 4)
            {
                // SAFETY: as below; each state is checked to be untagged before it is used.
                let s1 = unsafe { dfa.next_state_untagged_unchecked(cache, sid, b0) };
                if s1.is_tagged() {
                    break;
                }
                let s2 = unsafe { dfa.next_state_untagged_unchecked(cache, s1, b1) };
                if s2.is_tagged() {
                    (sid, at) = (s1, at + 1);
                    break;
                }
                let s3 = unsafe { dfa.next_state_untagged_unchecked(cache, s2, b2) };
                if s3.is_tagged() {
                    (sid, at) = (s2, at + 2);
                    break;
                }
                let s4 = unsafe { dfa.next_state_untagged_unchecked(cache, s3, b3) };
                if s4.is_tagged() {
                    (sid, at) = (s3, at + 3);
                    break;
                }
                (sid, at) = (s4, at + 4);
            }
            let Some(&byte) = bytes.get(at) else {
                break;
            };
            at += 1;
            // The hot path: from an ordinary state along a transition already computed. Every
            // other case (a match to report, a transition not computed yet, the dead state) is
            // tagged and rare, and goes the long way.
            if !sid.is_tagged() {
                // SAFETY: `sid` is untagged and came from this DFA and this cache (the start
                // state or a transition of it; the cache is only cleared inside `step`, which
                // returns a state of the cleared cache), as `next_state_untagged_unchecked`
                // requires. This is how regex-automata's own searches run.
                let next = unsafe { dfa.next_state_untagged_unchecked(cache, sid, byte) };
                if !next.is_tagged() {
                    sid = next;
                    continue;
                }
            }
            sid = match Engine::step(dfa, cache, sid, byte, &mut on_match)? {
                Some(next) => next,
                // Every pattern is anchored at the start, and none can match now.
                None => return Ok(()),
            };
        }
        if sid.is_dead() {
            return Ok(());
        }
        Engine::report(dfa, cache, sid, &mut on_match);
        // DFAs see a match one byte late: the end of the text is the last "byte".
        sid = dfa.next_eoi_state(cache, sid).map_err(|_| GaveUp)?;
        Engine::report(dfa, cache, sid, &mut on_match);
        Ok(())
    }

    /// One transition the slow way: reports the matches of `sid`, computes the transition if
    /// the lazy DFA has not yet, and returns the next state, or `None` once nothing can match.
    #[inline(never)]
    fn step(
        dfa: &hybrid::dfa::DFA,
        cache: &mut hybrid::dfa::Cache,
        sid: LazyStateID,
        byte: u8,
        on_match: &mut impl FnMut(PatternID),
    ) -> Result<Option<LazyStateID>, GaveUp> {
        if sid.is_dead() {
            return Ok(None);
        }
        Engine::report(dfa, cache, sid, on_match);
        let next = dfa.next_state(cache, sid, byte).map_err(|_| GaveUp)?;
        Ok((!next.is_dead()).then_some(next))
    }

    fn report(
        dfa: &hybrid::dfa::DFA,
        cache: &hybrid::dfa::Cache,
        sid: LazyStateID,
        on_match: &mut impl FnMut(PatternID),
    ) {
        if sid.is_match() {
            for i in 0..dfa.match_len(cache, sid) {
                on_match(dfa.match_pattern(cache, sid, i));
            }
        }
    }

    fn memory_usage(&self) -> usize {
        self.dfa.memory_usage() + self.dfa.get_nfa().memory_usage()
    }
}

/// The lazy DFA could not go on (it never should: see [`Engine::new`]).
struct GaveUp;

impl Clone for Engine {
    fn clone(&self) -> Engine {
        Engine::with_dfa(self.dfa.clone())
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("dfa", &self.dfa).finish()
    }
}

/// One regex on its own, as the rules write it: case-insensitive unless it says otherwise.
pub fn compile_one(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
}

// ---------------------------------------------------------------------------------------------
// Word boundaries

fn is_unicode_word_look(look: Look) -> bool {
    matches!(
        look,
        Look::WordUnicode
            | Look::WordUnicodeNegate
            | Look::WordStartUnicode
            | Look::WordEndUnicode
            | Look::WordStartHalfUnicode
            | Look::WordEndHalfUnicode
    )
}

fn has_word_look(hir: &Hir) -> bool {
    hir.properties().look_set().contains_word_unicode()
}

/// The pattern with every Unicode word-boundary assertion replaced by the empty match: a
/// superset of the pattern.
fn strip_word_looks(hir: &Hir) -> Hir {
    if !has_word_look(hir) {
        return hir.clone();
    }
    match hir.kind() {
        HirKind::Look(look) if is_unicode_word_look(*look) => Hir::empty(),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(strip_word_looks).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(strip_word_looks).collect()),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(strip_word_looks(&rep.sub)),
            ..rep.clone()
        }),
        HirKind::Capture(cap) => Hir::capture(Capture {
            sub: Box::new(strip_word_looks(&cap.sub)),
            ..cap.clone()
        }),
        _ => hir.clone(),
    }
}

/// `\w` as Unicode defines it, which is what Unicode word boundaries test.
static WORD: LazyLock<ClassUnicode> = LazyLock::new(|| class(r"\w"));

/// The classes that stand in for `\w` and `\W` beyond the edge of a pattern, in each bound.
struct EdgeClasses {
    word: ClassUnicode,
    non_word: ClassUnicode,
}

/// Subset bound: ASCII word and non-word characters only.
static ASCII_EDGE: LazyLock<EdgeClasses> = LazyLock::new(|| EdgeClasses {
    word: class(r"[0-9A-Za-z_]"),
    non_word: class(r"[\x00-\x7F--[0-9A-Za-z_]]"),
});

/// Superset bound: any non-ASCII character may be either.
static LOOSE_EDGE: LazyLock<EdgeClasses> = LazyLock::new(|| EdgeClasses {
    word: class(r"[0-9A-Za-z_\x{80}-\x{10FFFF}]"),
    non_word: class(r"[[\x00-\x7F--[0-9A-Za-z_]]\x{80}-\x{10FFFF}]"),
});

fn class(pattern: &str) -> ClassUnicode {
    match ParserBuilder::new()
        .build()
        .parse(pattern)
        .as_ref()
        .map(Hir::kind)
    {
        Ok(HirKind::Class(Class::Unicode(class))) => class.clone(),
        _ => unreachable!("{pattern} is a Unicode class"),
    }
}

/// Which kinds of character can stand on one side of a position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Kinds {
    word: bool,
    non_word: bool,
}

impl Kinds {
    fn of_char(c: char) -> Kinds {
        let word = regex_syntax::is_word_character(c);
        Kinds {
            word,
            non_word: !word,
        }
    }

    fn of_class(class: &ClassUnicode) -> Kinds {
        let mut word = class.clone();
        word.intersect(&WORD);
        let mut non_word = class.clone();
        non_word.difference(&WORD);
        Kinds {
            word: !word.ranges().is_empty(),
            non_word: !non_word.ranges().is_empty(),
        }
    }

    fn union(self, other: Kinds) -> Kinds {
        Kinds {
            word: self.word || other.word,
            non_word: self.non_word || other.non_word,
        }
    }

    /// The values "is a word character" can take.
    fn values(self) -> impl Iterator<Item = bool> {
        [(self.word, true), (self.non_word, false)]
            .into_iter()
            .filter_map(|(possible, value)| possible.then_some(value))
    }
}

/// What a sub-pattern can put at one of its ends.
#[derive(Debug, Clone, Copy)]
struct End {
    /// `None`: not known (raw bytes).
    kinds: Option<Kinds>,
    /// It can match the empty string.
    empty: bool,
    /// An empty match of it can pass an assertion.
    look: bool,
}

impl End {
    const EMPTY: End = End {
        kinds: Some(Kinds {
            word: false,
            non_word: false,
        }),
        empty: true,
        look: false,
    };

    fn chars(kinds: Kinds) -> End {
        End {
            kinds: Some(kinds),
            empty: false,
            look: false,
        }
    }

    fn or(self, other: End) -> End {
        End {
            kinds: self.kinds.zip(other.kinds).map(|(a, b)| a.union(b)),
            empty: self.empty || other.empty,
            look: self.look || other.look,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The characters `hir` can begin (`Side::Left`) or end (`Side::Right`) with.
fn end(hir: &Hir, side: Side) -> End {
    match hir.kind() {
        HirKind::Empty => End::EMPTY,
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0).ok().and_then(|s| match side {
                Side::Left => s.chars().next(),
                Side::Right => s.chars().next_back(),
            });
            match c {
                Some(c) => End::chars(Kinds::of_char(c)),
                None if lit.0.is_empty() => End::EMPTY,
                None => End {
                    kinds: None,
                    ..End::EMPTY
                },
            }
        }
        HirKind::Class(Class::Unicode(class)) => End::chars(Kinds::of_class(class)),
        HirKind::Class(Class::Bytes(_)) => End {
            kinds: None,
            empty: false,
            look: false,
        },
        HirKind::Look(_) => End {
            look: true,
            ..End::EMPTY
        },
        HirKind::Repetition(rep) => {
            let sub = end(&rep.sub, side);
            End {
                empty: sub.empty || rep.min == 0,
                ..sub
            }
        }
        HirKind::Capture(cap) => end(&cap.sub, side),
        HirKind::Concat(subs) => match side {
            Side::Left => end_of_seq(subs.iter(), side),
            Side::Right => end_of_seq(subs.iter().rev(), side),
        },
        HirKind::Alternation(subs) => subs
            .iter()
            .map(|h| end(h, side))
            .reduce(End::or)
            .unwrap_or(End::EMPTY),
    }
}

/// The end of a sequence, given from the end in question inwards.
fn end_of_seq<'h>(seq: impl Iterator<Item = &'h Hir>, side: Side) -> End {
    let mut acc = End::EMPTY;
    for h in seq {
        let e = end(h, side);
        acc = End {
            kinds: acc.kinds.zip(e.kinds).map(|(a, b)| a.union(b)),
            empty: e.empty,
            look: acc.look || e.look,
        };
        if !e.empty {
            break;
        }
    }
    acc
}

/// What stands next to a position, seen from inside the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A character the pattern itself matched, of these kinds.
    Chars(Kinds),
    /// The edge of the pattern, with no assertion in between: any text, or the text's edge.
    Edge,
    /// Both, or something not known.
    Unknown,
}

/// The context beyond `inner` (a neighbour that may be empty) when `outer` lies beyond that.
fn beyond(inner: End, outer: Context) -> Context {
    let Some(kinds) = inner.kinds else {
        return Context::Unknown;
    };
    if !inner.empty {
        return Context::Chars(kinds);
    }
    match outer {
        Context::Chars(k) => Context::Chars(k.union(kinds)),
        Context::Edge if kinds == Kinds::default() && !inner.look => Context::Edge,
        Context::Edge | Context::Unknown => Context::Unknown,
    }
}

/// Joins the contexts of two ways into one position (repetitions).
fn merge(a: Context, b: Context) -> Context {
    match (a, b) {
        (Context::Chars(x), Context::Chars(y)) => Context::Chars(x.union(y)),
        (Context::Edge, Context::Edge) => Context::Edge,
        _ => Context::Unknown,
    }
}

/// Which bound of a pattern [`rewrite`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Matches only where the pattern matches.
    Subset,
    /// Matches wherever the pattern matches.
    Superset,
}

/// The pattern with every Unicode word-boundary assertion replaced by what a DFA can evaluate
/// on any text: its subset and superset bounds, or `None` when an assertion depends on both
/// neighbours' unknown kinds.
fn bounds(hir: &Hir) -> Option<(Hir, Hir)> {
    let subset = rewrite(hir, Context::Edge, Context::Edge, Bound::Subset)?;
    let superset = rewrite(hir, Context::Edge, Context::Edge, Bound::Superset)?;
    Some((subset, superset))
}

fn rewrite(hir: &Hir, before: Context, after: Context, bound: Bound) -> Option<Hir> {
    if !has_word_look(hir) {
        return Some(hir.clone());
    }
    match hir.kind() {
        HirKind::Look(look) => resolve(*look, before, after, bound),
        HirKind::Capture(cap) => Some(Hir::capture(Capture {
            sub: Box::new(rewrite(&cap.sub, before, after, bound)?),
            ..cap.clone()
        })),
        HirKind::Alternation(subs) => Some(Hir::alternation(
            subs.iter()
                .map(|h| rewrite(h, before, after, bound))
                .collect::<Option<_>>()?,
        )),
        HirKind::Concat(subs) => {
            let mut out = Vec::with_capacity(subs.len());
            for (i, h) in subs.iter().enumerate() {
                if !has_word_look(h) {
                    out.push(h.clone());
                    continue;
                }
                let left = beyond(end_of_seq(subs[..i].iter().rev(), Side::Right), before);
                let right = beyond(end_of_seq(subs[i + 1..].iter(), Side::Left), after);
                out.push(rewrite(h, left, right, bound)?);
            }
            Some(Hir::concat(out))
        }
        HirKind::Repetition(rep) => {
            let (left, right) = if rep.max.is_some_and(|max| max <= 1) {
                (before, after)
            } else {
                // Repeated: the neighbour may also be the previous or next round.
                let first = end(&rep.sub, Side::Left);
                let last = end(&rep.sub, Side::Right);
                if first.empty || last.empty {
                    return None;
                }
                (
                    merge(before, Context::Chars(last.kinds?)),
                    merge(after, Context::Chars(first.kinds?)),
                )
            };
            Some(Hir::repetition(Repetition {
                sub: Box::new(rewrite(&rep.sub, left, right, bound)?),
                ..rep.clone()
            }))
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => Some(hir.clone()),
    }
}

/// An equivalent of one assertion between `before` and `after`.
fn resolve(look: Look, before: Context, after: Context, bound: Bound) -> Option<Hir> {
    // Whether the assertion holds, given whether the characters before and after are word
    // characters (the edge of the text counts as a non-word character).
    let holds: fn(bool, bool) -> bool = match look {
        Look::WordUnicode => |prev, next| prev != next,
        Look::WordUnicodeNegate => |prev, next| prev == next,
        Look::WordStartUnicode => |prev, next| !prev && next,
        Look::WordEndUnicode => |prev, next| prev && !next,
        Look::WordStartHalfUnicode => |prev, _| !prev,
        Look::WordEndHalfUnicode => |_, next| !next,
        _ => return Some(Hir::look(look)),
    };
    match (before, after) {
        (Context::Chars(prev), Context::Chars(next)) => {
            let outcomes = prev
                .values()
                .flat_map(|p| next.values().map(move |n| holds(p, n)));
            Some(if same(outcomes)? {
                Hir::empty()
            } else {
                Hir::fail()
            })
        }
        // At the start of the pattern: consume the character before instead of looking at it.
        (Context::Edge, Context::Chars(next)) => {
            let if_word = same(next.values().map(|n| holds(true, n)))?;
            let if_non_word = same(next.values().map(|n| holds(false, n)))?;
            Some(consume(if_word, if_non_word, Look::Start, bound))
        }
        // At the end of the pattern: consume the character after.
        (Context::Chars(prev), Context::Edge) => {
            let if_word = same(prev.values().map(|p| holds(p, true)))?;
            let if_non_word = same(prev.values().map(|p| holds(p, false)))?;
            Some(consume(if_word, if_non_word, Look::End, bound))
        }
        _ => None,
    }
}

/// The one value all `outcomes` have, or `None` when they differ or there are none.
fn same(mut outcomes: impl Iterator<Item = bool>) -> Option<bool> {
    let first = outcomes.next()?;
    outcomes.all(|o| o == first).then_some(first)
}

/// What an assertion at the edge of the pattern becomes, given whether it holds when the
/// character beyond the edge is a word character and when it is not (or is the text's edge,
/// which `edge` asserts).
fn consume(if_word: bool, if_non_word: bool, edge: Look, bound: Bound) -> Hir {
    let classes: &EdgeClasses = match bound {
        Bound::Subset => &ASCII_EDGE,
        Bound::Superset => &LOOSE_EDGE,
    };
    match (if_word, if_non_word) {
        (true, true) => Hir::empty(),
        (false, false) => Hir::fail(),
        (true, false) => Hir::class(Class::Unicode(classes.word.clone())),
        (false, true) => Hir::alternation(vec![
            Hir::look(edge),
            Hir::class(Class::Unicode(classes.non_word.clone())),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_set(patterns: &[&str]) -> FieldSet {
        FieldSet::new(
            Field::Body,
            patterns.iter().map(|p| p.to_string()).collect(),
        )
        .expect("valid patterns")
    }

    fn found(fs: &FieldSet, hay: &str, one_by_one: bool) -> Vec<bool> {
        let mut found = vec![false; fs.patterns.len()];
        if one_by_one {
            fs.mark_one_by_one(hay, &mut found);
        } else {
            fs.mark(hay, &mut found, &mut Vec::new());
        }
        found
    }

    fn matches(patterns: &[&str], hay: &str) -> Vec<bool> {
        found(&field_set(patterns), hay, false)
    }

    #[test]
    fn unicode_word_boundaries_stay_exact() {
        let p = [r"\bfür\b", r"\bärger", r"straße\b", r"\Bheit\b", "total"];
        assert_eq!(
            matches(&p, "Das ist für mich"),
            [true, false, false, false, false]
        );
        assert_eq!(matches(&p, "Fürst von Hessen"), [false; 5]);
        assert_eq!(
            matches(&p, "ÄRGER mit der Straße"),
            [false, true, true, false, false]
        );
        assert_eq!(matches(&p, "verärgert, Straßenbahn"), [false; 5]);
        assert_eq!(
            matches(&p, "Freiheit, TOTALausfall"),
            [false, false, false, true, true]
        );
        // Case-insensitive unless the pattern says otherwise.
        assert_eq!(matches(&[r"(?-i)\bVPN\b"], "vpn und VPN"), [true]);
        assert_eq!(matches(&[r"(?-i)\bVPN\b"], "vpn"), [false]);
    }

    #[test]
    fn word_boundaries_next_to_non_ascii_characters() {
        let p = [r"\bfehler\b", r"\bst(ö|oe)rung\b"];
        // Quotation marks, dashes and no-break spaces are no word characters …
        assert_eq!(matches(&p, "„Fehler“"), [true, false]);
        assert_eq!(matches(&p, "Störung\u{a0}im–Netz"), [false, true]);
        // … letters of any script are.
        assert_eq!(matches(&p, "éfehler"), [false, false]);
        assert_eq!(matches(&p, "Störungé"), [false, false]);
        // Case folding beyond ASCII: the Kelvin sign is a K.
        assert_eq!(matches(&[r"\bkfz\b"], "\u{212A}FZ-Zulassung"), [true]);
    }

    /// Which way each pattern goes into the automaton: rewritten exactly, or only approximated
    /// (then its own regex decides).
    #[test]
    fn rewrites_word_boundaries_where_one_side_is_known() {
        let exact = [
            r"\bfoo\b",
            r"\b(foo|bar)s?\b",
            r"\bsap(\s+(fi|mm|s/4(hana)?))?\b",
            r"^\s*[12]\b",
            r"\b(stadt|gemeinde)\s+gie(ß|ss)en\b",
            r"foo\b\s",
            r"\Bheit\b",
            r"\b{start}wort\b{end}",
            r"(?:\bfoo\b)?bar",
            r"x\b",
        ];
        for p in exact {
            let hir = ParserBuilder::new()
                .case_insensitive(true)
                .build()
                .parse(p)
                .expect("valid");
            assert!(bounds(&hir).is_some(), "{p} should be rewritten");
        }
        let approximated = [
            r"\bbescheid\b.*\.pdf$",
            r"a?\bb?",
            r"\b",
            r"^\bfoo",
            r"(\w|-)\b-",
            // The first round begins at the edge, the others after an "o".
            r"(\bfoo\b)+",
        ];
        for p in approximated {
            let hir = ParserBuilder::new()
                .case_insensitive(true)
                .build()
                .parse(p)
                .expect("valid");
            assert!(bounds(&hir).is_none(), "{p} cannot be rewritten");
        }
    }

    /// The automaton agrees with each pattern's own regex on texts built from pieces that sit
    /// on every side of a word boundary.
    #[test]
    fn agrees_with_the_regex_crate() {
        let patterns = [
            r"\bfoo\b",
            r"\bfoo",
            r"foo\b",
            r"\Bfoo",
            r"foo\B",
            r"\b{start}foo\b{end}",
            r"\b{start-half}foo\b{end-half}",
            r"\b(foo|bar)s?\b",
            r"\bfoo\s+bar\b",
            r"(?:\bfoo\b)?bar",
            r"(\bfoo\b)+",
            r"\bbar\b.*\.pdf$",
            r"^\s*[12]\b",
            r"^\bfoo",
            r"foo\b$",
            r"\bst(ö|oe)rung\b",
            r"\bärger\b",
            r"\bkfz\b",
            r"\b_\b",
            r"-\b",
            r"\b-",
            r"(?-u:\b)foo(?-u:\b)",
            r"(?-i)\bFoo\b",
            r"a?\bb?",
            r"\b",
            r"\B",
        ];
        let pieces = [
            "foo",
            "FOO",
            "bar",
            "bars",
            "s",
            "störung",
            "stoerung",
            "ärger",
            "kfz",
            "\u{212A}FZ",
            " ",
            "\u{a0}",
            "„",
            "“",
            "-",
            "_",
            "é",
            "1",
            "2",
            ".pdf",
            "\n",
            "ü",
            "ß",
            "日本",
        ];
        let fs = field_set(&patterns);
        let exact: Vec<Regex> = patterns
            .iter()
            .map(|p| compile_one(p).expect("valid"))
            .collect();
        let mut seed = 0x5EED_u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        for round in 0..20_000 {
            let len = 1 + next(6);
            let hay: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            let expected: Vec<bool> = exact.iter().map(|re| re.is_match(&hay)).collect();
            assert_eq!(found(&fs, &hay, false), expected, "{patterns:?} on {hay:?}");
            // The fallback, now and then (it compiles every regex anew).
            if round % 1_000 == 0 {
                assert_eq!(found(&fs, &hay, true), expected, "one by one on {hay:?}");
            }
        }
    }
}
