"""The triage of reports about a referenced health app: category, severity, keywords and queue.

Anyone may report a referenced app — a malfunction, or harm it did to someone's health. Each
report is triaged as it is filed, so that what endangers people reaches the right authority
first; an agent of that authority then confirms or corrects the triage. Because a person acts on
it, the triage must say *why*: every :class:`Triage` carries the words of the report that drove
it (``keywords``) and one plain-French sentence per decision (``reasons``). Two parts, both
explainable and deterministic:

* **Rules** (:data:`RULES`): keyword patterns per category, matched on the report lower-cased
  and stripped of its accents (``Hospitalisée`` and ``hospitalisee`` match alike). A rule may
  also set a severity (``décès``, ``urgences`` → critique; ``malaise``, ``mauvaise dose``,
  ``hypoglycémie`` → majeure). A symptom or an event denied just before it is not counted
  (``pas de malaise``, ``aucun malaise``, ``sans hospitalisation``, ``je n'ai pas été
  hospitalisé``); a *missing feature* is the complaint itself (``pas de sous-titres``, ``sans
  chiffrement``), so the rules that name one are not negatable. When rules of several
  categories fire, the most serious for the person wins (:data:`RULE_PRIORITY`: harm, then
  security, personal data, misleading information, accessibility, malfunction).
* **A small text classifier** — multinomial naive Bayes with Laplace smoothing, trained when
  first used from ``triage_corpus.json`` beside this module. It names the category when no rule
  fires, and its probabilities (``scores``) are kept in every triage. Its explanation is the
  three words of the report that weigh most for the category retained: their log-likelihood
  ratio for that category against all the others, times their count in the report.

**Combining.** A rule is explicit, so it wins over the classifier; otherwise the classifier's
most probable category. A report with no word the classifier knows and no rule is ``autre``.
What the reporter ticked on the form (``declared``) is never overruled *downwards*: declared
harm stays harm whatever the text says; a declared malfunction or "other" is used only when the
text does not decide (no rule, classifier below :data:`HINT_THRESHOLD`). Severity is the highest
of the rules' severities and the category's floor (:data:`DEFAULT_SEVERITY`: harm, security
and personal data are at least *majeure*); harm through a medical device with a sign of gravity
is *critique* (matériovigilance).

**Routing.** Harm to health or a medical device goes to the control queue of the medicines
agency (matériovigilance: ANSM); everything else to the surveillance queue of the digital-health
authority. The handling deadline follows the severity (:data:`DEADLINE_DAYS`).

**Revising the corpus.** ``triage_corpus.json`` holds ``training`` examples (one realistic
report per line with its category) and a separate ``evaluation`` set that is never trained on:
``tests/unit/domain/test_store_triage.py`` measures the triage's accuracy on it and fails under
0.8. To teach the classifier a new kind of report, add a few examples to ``training`` (several
phrasings, about several kinds of apps) — not the evaluation sentences themselves; a word that
must always decide belongs in a rule instead. Only the first :data:`MAX_CHARS` characters of a
report are read, so a huge text costs no more than a long one.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

import orjson

__all__ = [
    "CATEGORIES",
    "DEADLINE_DAYS",
    "DECLARABLE",
    "DEFAULT_SEVERITY",
    "HINT_THRESHOLD",
    "MAX_CHARS",
    "QUEUES",
    "RULES",
    "RULE_PRIORITY",
    "SEVERITIES",
    "Classifier",
    "Corpus",
    "Example",
    "Rule",
    "Triage",
    "classifier",
    "load_corpus",
    "tokenize",
    "triage",
]

CATEGORIES: Final[dict[str, str]] = {
    "dysfonctionnement": "Dysfonctionnement technique",
    "effet_indesirable": "Effet néfaste pour la santé",
    "donnees_personnelles": "Données personnelles / confidentialité",
    "securite": "Sécurité informatique",
    "accessibilite": "Accessibilité",
    "information_trompeuse": "Information fausse ou trompeuse",
    "autre": "Autre",
}
SEVERITIES: Final[dict[str, str]] = {"critique": "Critique", "majeure": "Majeure", "mineure": "Mineure"}
QUEUES: Final[dict[str, str]] = {
    "surveillance": "Surveillance — autorité du numérique en santé",
    "controle": "Contrôle — agence du médicament (matériovigilance)",
}
DEADLINE_DAYS: Final[dict[str, int]] = {"critique": 2, "majeure": 10, "mineure": 30}

HARM: Final = "effet_indesirable"
DECLARABLE: Final = ("dysfonctionnement", "effet_indesirable", "autre")  # the form's choices
# the least severity of each category: harm, intrusion and exposure of data are never minor
DEFAULT_SEVERITY: Final[dict[str, str]] = {
    "dysfonctionnement": "mineure",
    "effet_indesirable": "majeure",
    "donnees_personnelles": "majeure",
    "securite": "majeure",
    "accessibilite": "mineure",
    "information_trompeuse": "mineure",
    "autre": "mineure",
}
# when rules of several categories fire, the most serious for the person wins
RULE_PRIORITY: Final = (
    "effet_indesirable",
    "securite",
    "donnees_personnelles",
    "information_trompeuse",
    "accessibilite",
    "dysfonctionnement",
)
HINT_THRESHOLD: Final = 0.5  # below this probability, the classifier defers to the declared category
MAX_CHARS: Final = 20_000
MAX_KEYWORDS: Final = 8
EVIDENCE: Final = 3  # the classifier's words given as its explanation
_RANK: Final = {"mineure": 0, "majeure": 1, "critique": 2}

# ---------------------------------------------------------------------------- words

# function words: frequent in every category, they would only add noise (accent-folded)
_STOP_TEXT: Final = """
    a ai aie aient ait alors as au aucun aussi aux avais avait avant avec avez avoir avons
    c ca car ce cela celle celui ces cet cette ceux chaque chez comme comment d dans de des deja
    depuis deux dont donc du elle elles en encore entre es est et etaient etais etait ete etes etre
    eu fait faire fois hui il ils j je jusqu l la le les leur leurs lui m ma mais me meme mes moi
    mon n ne nos notre nous on ont ou par parce pas peu peut peux plus pour pourquoi qu quand que
    quel quelle quelles quels qui quoi s sa se ses si son sont sous suis sur t ta te tes toi ton
    toujours tous tout toute toutes tres trop tu un une vers via vos votre vous y
"""
_STOP_WORDS: Final = frozenset(_STOP_TEXT.split())
# words that deny the next noun or participle: "pas de malaise", "aucun malaise", "sans crise"
_NEGATORS: Final = frozenset({"pas", "aucun", "aucune", "sans", "ni", "jamais"})
# words allowed between a negator and what it denies: "pas eu de", "n'ai pas été", "sans mon"
_NEGATION_GLUE: Final = frozenset(
    {"eu", "ete", "fait", "de", "d", "du", "des", "un", "une", "mon", "ma", "mes", "son", "sa", "ses"}
)
# light French suffix stripping, longest first, keeping a stem of 3 letters or more
_SUFFIX_TEXT: Final = """
    issements issement ements ement ations ation atrices atrice ateurs ateur euses euse iques ique
    ables able ages age ees ee es er ez e s x
"""
_SUFFIXES: Final = tuple(_SUFFIX_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")
_LIGATURES: Final = {"œ": "oe", "æ": "ae", "ß": "ss"}
NEGATED_PREFIX: Final = "non_"


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character lower-cased, without its accent; anything but a-z and 0-9 becomes a space."""
    lowered = char.lower()
    lowered = _LIGATURES.get(lowered, lowered)
    plain = "".join(c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c))
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9") else " " for c in plain)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True, slots=True)
class _Word:
    folded: str
    start: int  # in the folded text
    original: str  # as the reporter wrote it
    negated_from: int | None  # start of "pas de …" in the folded text when the word is denied


@dataclass(frozen=True, slots=True)
class _Document:
    """A report read once: its folded text (runs of non-letters made one space), the position in
    the original of each folded character, and its words with their negation."""

    text: str
    folded: str
    origin: tuple[int, ...]
    words: tuple[_Word, ...]

    def original(self, start: int, end: int) -> str:
        """The reporter's own spelling of the folded span ``[start, end)``."""
        return self.text[self.origin[start] : self.origin[end - 1] + 1]

    def tokens(self) -> list[tuple[str, str]]:
        """(token, original) for the classifier: stems of the content words, a denied word as
        ``non_<stem>`` with "pas de …" as its original."""
        out: list[tuple[str, str]] = []
        for word in self.words:
            if word.folded in _STOP_WORDS or word.folded in _NEGATORS or len(word.folded) < 2:
                continue
            if word.folded.isdigit():
                continue
            if word.negated_from is None:
                out.append((_stem(word.folded), word.original))
            else:
                end = word.start + len(word.folded)
                out.append((NEGATED_PREFIX + _stem(word.folded), self.original(word.negated_from, end)))
        return out

    @classmethod
    def read(cls, text: str) -> _Document:
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text):
            for folded in _fold_char(char):
                if folded == " " and (not chars or chars[-1] == " "):
                    continue
                chars.append(folded)
                origin.append(index)
        folded_text = "".join(chars)
        words: list[_Word] = []
        negator: int | None = None  # start of the pending negation
        for found in _WORD.finditer(folded_text):
            token, start = found.group(), found.start()
            denied: int | None = None
            if token in _NEGATORS:
                negator = start
            elif negator is not None and token in _NEGATION_GLUE:
                pass
            elif negator is not None:
                # "pas depuis hier" denies nothing the report names: a stop word ends the scope
                if token not in _STOP_WORDS:
                    denied = negator
                negator = None
            original = text[origin[start] : origin[found.end() - 1] + 1]
            words.append(_Word(token, start, original, denied))
        return cls(text, folded_text, tuple(origin), tuple(words))


def tokenize(text: str) -> tuple[str, ...]:
    """The classifier's tokens of ``text``: folded, stop words dropped, stemmed, denials marked
    (``"Pas de malaise, l'écran a planté"`` → ``("non_malais", "ecran", "plant")``)."""
    return tuple(token for token, _ in _Document.read(text).tokens())


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """A pattern on the folded report that names a category (and maybe a severity)."""

    name: str  # what it recognises, in French, for the reasons
    category: str
    severity: str | None
    pattern: re.Pattern[str]
    negatable: bool  # a symptom or event can be denied; a missing feature is the complaint


def _rule(category: str, severity: str | None, name: str, pattern: str, *, negatable: bool = True) -> Rule:
    """A rule from its alternatives (``|``-separated, on folded text; ``_`` stands for up to
    four words in between), matched on whole words."""
    expanded = pattern.replace(" _ ", r" (?:[a-z0-9]+ ){0,4}")
    if "_" in expanded:  # folded text has no underscore: a misplaced gap marker
        raise ValueError(f"rule {name!r}: '_' must stand between two spaces")
    return Rule(name, category, severity, re.compile(r"\b(?:" + expanded + r")\b"), negatable)


# fmt: off
RULES: Final[tuple[Rule, ...]] = (
    # harm to health: the gravest first
    _rule(HARM, "critique", "décès", r"dece(?:s|de|dee|dees|des)|morte?s?|mourir"),
    _rule(HARM, "critique", "hospitalisation ou urgences",
          r"hospitalis\w*|(?:aux|les|des) urgences|samu|pompiers|reanimation"
          r"|(?:emmene|transporte|conduit|admis|fini|retrouve)e?s? _ a l hopital"),
    _rule(HARM, "critique", "atteinte grave",
          r"perte de connaissance|evanoui\w*|coma|convulsion\w*|arret cardiaque|detresse respiratoire"
          r"|tentative de suicide|suicid\w*|choc anaphylactique|sur ?dosages?|overdose"
          r"|(?:grave|grosse|severe)s? hypo ?glycemies?|hypo ?glycemies? (?:severe|grave)s?"),
    _rule(HARM, "majeure", "malaise",
          r"malaises?|vertiges?|etourdissements?|syncopes?|palpitations?|douleurs? thoraciques?"
          r"|nausees?|vomissements?|crises? d (?:angoisse|epilepsie)"),
    _rule(HARM, "majeure", "erreur de dose",
          r"mauvaises? doses?|doubles? doses?|erreurs? de (?:dose|dosage)s?|sous ?dosages?"
          r"|doses? (?:erronee|fausse|incorrecte|trop forte|trop elevee)s?|trop d insuline"
          r"|(?:dose|bolus|unite|calcul)s? _ insuline|insuline _ (?:dose|bolus|unite|calcul)s?"
          r"|(?:oubli|rate|saute)e?s? _ (?:traitement|comprime|medicament|dose)s?"),
    _rule(HARM, "majeure", "déséquilibre glycémique", r"hypo ?glycemi\w*|hyper ?glycemi\w*|acidocetose"),
    _rule(HARM, "majeure", "blessure",
          r"bless(?:e|ee|es|ees|ure|ures)|brul(?:e|ee|es|ees|ure|ures)|plaies?|fractures?|dechirures?"
          r"|reactions? allergiques?"),
    _rule(HARM, None, "effet indésirable", r"effets? (?:indesirable|secondaire|nefaste)s?"),
    # security: what is missing is the complaint, so these rules are not negatable
    _rule("securite", "critique", "données d'autrui exposées",
          r"(?:donnees|dossiers?|comptes?|resultats|documents|ordonnances|comptes rendus)"
          r" (?:[a-z0-9]+ ){0,2}d (?:un|une) autre (?:patient|personne|utilisateur)\w*"
          r"|(?:de|des) tous les (?:patients|utilisateurs)", negatable=False),
    _rule("securite", "majeure", "piratage",
          r"pirat\w*|hack\w*|intrusions?|usurp\w*|pris le controle|connexions? suspectes?"
          r"|rancongiciels?|ransomware", negatable=False),
    _rule("securite", "majeure", "faille", r"failles?|vulnerabilit\w*|erreur sql", negatable=False),
    _rule("securite", "majeure", "défaut de protection",
          r"en clair|non chiffree?s?|sans chiffrement|http|sans (?:aucune )?authentification"
          r"|double authentification|hameconnage|phishing|(?:sms|mail|courriel|site)s? _ frauduleux"
          r"|faux (?:site|e mail|mail|sms|courriel)", negatable=False),
    # personal data
    _rule("donnees_personnelles", "majeure", "fuite ou partage de données",
          r"fuites? de (?:mes |nos |des )?donnees"
          r"|donnees _ (?:partagee|transmise|vendue|revendue|cedee|communiquee)s?"
          r"|(?:partage|transmet|vend|revend|cede)\w* (?:[a-z0-9]+ ){0,2}(?:mes|nos|les|leurs|ses)"
          r" (?:donnees|mesures|informations)"
          r"|sans (?:mon |notre |leur |son |votre |l )?(?:accord|consentement|autorisation)"
          r"|sans (?:me|nous) (?:demander|prevenir)|courtiers? en donnees", negatable=False),
    _rule("donnees_personnelles", "majeure", "publicité ciblée",
          r"publicites? ciblees?|regies? publicitaires?|cookies?|traceurs?", negatable=False),
    _rule("donnees_personnelles", None, "droits sur les données",
          r"rgpd|cnil|droit d acces|droit a l oubli|protection des donnees|confidentialite|consentement"
          r"|(?:supprimer|suppression de|effacer|effacement de) (?:[a-z0-9]+ ){0,2}(?:donnees|compte|historique)",
          negatable=False),
    # misleading information
    _rule("information_trompeuse", "majeure", "conseil dangereux",
          r"(?:conseill|recommand|propos|suggere|dit)\w* _ arret\w* (?:[a-z0-9]+ ){0,2}"
          r"(?:traitement|medicament|insuline)s?"
          r"|(?:remplace|guerissent|guerit|guerir)\w* _ (?:cancer|diabete|traitement|chimiotherapie)"),
    _rule("information_trompeuse", None, "information fausse",
          r"fausses? informations?|informations? (?:[a-z0-9]+ ){0,2}(?:fausse|erronee|trompeuse|obsolete"
          r"|perimee|inexacte)s?|conseils? (?:[a-z0-9]+ ){0,3}(?:faux|errones|dangereux|trompeurs)"
          r"|(?:publicite|promesse)s? mensongeres?|trompeu(?:r|rs|se|ses)|mensong\w*|faux temoignages?"
          r"|complotist\w*|charlatan\w*|pseudo ?scien\w*|miracles?|ce qui est faux"),
    # accessibility: a missing feature is the complaint, not negatable
    _rule("accessibilite", None, "lecteur d'écran",
          r"lecteurs? d ecran|voice ?over|talk ?back|nvda|jaws|synthese vocale|commande vocale|loupe"
          r"|braille", negatable=False),
    _rule("accessibilite", None, "handicap",
          r"malvoyante?s?|non ?voyante?s?|aveugles?|basse vision|daltonien\w*|contrastes?"
          r"|taille (?:du texte|des caracteres|de la police|des boutons)|sourde?s?|malentendante?s?"
          r"|sous ?titr\w*|audiodescription|au clavier|texte alternatif|accessibilite|rgaa|handicap\w*",
          negatable=False),
    # malfunction: the fallback of the rules, the least serious for the person
    _rule("dysfonctionnement", "majeure", "perte de données ou mesure fausse",
          r"(?:donnees|mesures|historique|seances|resultats) (?:[a-z0-9]+ ){0,6}(?:perdu|efface|disparu)e?s?"
          r"|(?:perdu|efface)e?s? (?:[a-z0-9]+ ){0,3}(?:donnees|mesures|historique)"
          r"|(?:valeur|mesure|glycemie|resultat|tension|chiffre)s? (?:[a-z0-9]+ ){0,3}"
          r"(?:fausse|faux|erronee|incoherente|aberrante)s?"),
    _rule("dysfonctionnement", None, "panne",
          r"plant(?:e|ee|ees|ent|ait|age|ages)(?! medicinale)|crash\w*|bugs?|bugg?\w*|bogues?|beugs?"
          r"|fig(?:e|ee|ees|ent)|ferme toute seule|ecran (?:blanc|noir|fige)|page (?:reste )?blanche"
          r"|messages? d erreur|pages? d erreur|erreur \d+"
          r"|(?:ne|n) (?:se |s )?(?:lance|ouvre|charge|demarre|connecte|synchronise|marche|fonctionne"
          r"|reagit|affiche|envoie|enregistre|sauvegarde)\w* (?:plus|pas)"
          r"|n arrive (?:plus|pas) a (?:me |se )?(?:connecter|ouvrir|lancer|synchroniser|enregistrer)"
          r"|impossible de (?:me |se )?(?:connecter|ouvrir|lancer|synchroniser|enregistrer|valider)"
          r"|tourne en boucle|synchronis\w*|se deconnecte\w*"),
)
# fmt: on


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    original: str


def _apply_rules(doc: _Document) -> tuple[list[_Hit], list[tuple[Rule, str]]]:
    """The rules that fire on ``doc``, and the matches not counted because they are denied."""
    denied = {word.start: word.negated_from for word in doc.words if word.negated_from is not None}
    hits: list[_Hit] = []
    negated: list[tuple[Rule, str]] = []
    for rule in RULES:
        for found in rule.pattern.finditer(doc.folded):
            start, end = found.span()
            if rule.negatable and start in denied:
                negated.append((rule, doc.original(denied[start], end)))
                continue
            hits.append(_Hit(rule, doc.original(start, end)))
    return hits, negated


# ---------------------------------------------------------------------------- classifier


@dataclass(frozen=True, slots=True)
class Example:
    category: str
    text: str


@dataclass(frozen=True, slots=True)
class Corpus:
    training: tuple[Example, ...]
    evaluation: tuple[Example, ...]  # never trained on: measures the triage


def _examples(data: Mapping[str, Any], key: str) -> tuple[Example, ...]:
    out: list[Example] = []
    for position, item in enumerate(data.get(key, ()), start=1):
        category, text = item.get("category"), item.get("text")
        if category not in CATEGORIES or not isinstance(text, str) or not text.strip():
            raise ValueError(f"triage corpus: {key} example {position} is malformed ({item!r})")
        out.append(Example(category, text))
    return tuple(out)


@functools.cache
def load_corpus() -> Corpus:
    """The examples shipped beside this module (``triage_corpus.json``)."""
    data = orjson.loads(files("hygie.domain.store").joinpath("triage_corpus.json").read_bytes())
    return Corpus(_examples(data, "training"), _examples(data, "evaluation"))


@dataclass(frozen=True, slots=True)
class Classifier:
    """Multinomial naive Bayes over :func:`tokenize`'s tokens, with Laplace (add-one) smoothing.

    ``log_likelihood[c][t]`` = log P(t | c); ``weight[c][t]`` = log P(t | c) − log P(t | not c),
    the log-likelihood ratio that explains a decision. Tokens unseen in training are ignored."""

    log_prior: Mapping[str, float]
    log_likelihood: Mapping[str, Mapping[str, float]]
    weight: Mapping[str, Mapping[str, float]]

    @classmethod
    def train(cls, examples: Iterable[Example]) -> Classifier:
        counts: dict[str, Counter[str]] = {category: Counter() for category in CATEGORIES}
        documents: Counter[str] = Counter()
        for example in examples:
            counts[example.category].update(tokenize(example.text))
            documents[example.category] += 1
        vocabulary = sorted(set().union(*counts.values()))
        total_documents = sum(documents.values())
        if not total_documents:
            raise ValueError("triage corpus: no training example")
        all_counts: Counter[str] = Counter()
        for counter in counts.values():
            all_counts.update(counter)
        size, everything = len(vocabulary), sum(all_counts.values())
        log_prior: dict[str, float] = {}
        log_likelihood: dict[str, dict[str, float]] = {}
        weight: dict[str, dict[str, float]] = {}
        for category, counter in counts.items():
            # a category without examples keeps a tiny prior rather than an impossible one
            log_prior[category] = math.log((documents[category] or 0.5) / total_documents)
            mine = sum(counter.values())
            rest = everything - mine
            log_likelihood[category] = {
                token: math.log((counter[token] + 1) / (mine + size)) for token in vocabulary
            }
            weight[category] = {
                token: log_likelihood[category][token]
                - math.log((all_counts[token] - counter[token] + 1) / (rest + size))
                for token in vocabulary
            }
        return cls(log_prior, log_likelihood, weight)

    def known(self, tokens: Iterable[str]) -> Counter[str]:
        """The tokens the classifier learned, with their counts."""
        vocabulary = self.log_likelihood[HARM]
        return Counter(token for token in tokens if token in vocabulary)

    def scores(self, tokens: Iterable[str]) -> dict[str, float]:
        """P(category | tokens) for every category, in :data:`CATEGORIES` order (sums to 1)."""
        counts = self.known(tokens)
        logs = {
            category: self.log_prior[category]
            + sum(n * self.log_likelihood[category][token] for token, n in counts.items())
            for category in CATEGORIES
        }
        top = max(logs.values())
        exp = {category: math.exp(value - top) for category, value in logs.items()}
        total = sum(exp.values())
        return {category: value / total for category, value in exp.items()}

    def evidence(
        self, tokens: Iterable[str], category: str, limit: int = EVIDENCE
    ) -> list[tuple[str, float]]:
        """The tokens that weigh most for ``category``: count × log-likelihood ratio, positive
        only, heaviest first (ties by token, so the explanation is stable)."""
        counts = self.known(tokens)
        weights = self.weight[category]
        ranked = sorted(
            ((token, n * weights[token]) for token, n in counts.items() if weights[token] > 0),
            key=lambda pair: (-pair[1], pair[0]),
        )
        return ranked[:limit]


@functools.cache
def classifier() -> Classifier:
    """The classifier trained on the shipped corpus's training examples (once per process)."""
    return Classifier.train(load_corpus().training)


# ---------------------------------------------------------------------------- triage


@dataclass(frozen=True, slots=True)
class Triage:
    category: str
    severity: str
    queue: str
    keywords: tuple[str, ...]  # the report's words that drove the decision, as written
    reasons: tuple[str, ...]  # one plain-French sentence per decision
    scores: dict[str, float]  # the classifier's probability per category (sums to 1)
    deadline_days: int

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "severity": self.severity,
            "queue": self.queue,
            "keywords": list(self.keywords),
            "reasons": list(self.reasons),
            "scores": dict(self.scores),
            "deadline_days": self.deadline_days,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Triage:
        """Rebuild a triage from :meth:`to_json`; raises ``ValueError`` if it is not one."""
        try:
            category, severity, queue = str(data["category"]), str(data["severity"]), str(data["queue"])
            keywords = tuple(str(word) for word in data["keywords"])
            reasons = tuple(str(reason) for reason in data["reasons"])
            scores = {str(key): float(value) for key, value in data["scores"].items()}
            deadline = int(data["deadline_days"])
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a triage: {error}") from error
        if category not in CATEGORIES or severity not in SEVERITIES or queue not in QUEUES:
            raise ValueError(
                f"not a triage: unknown category, severity or queue ({category}, {severity}, {queue})"
            )
        return cls(category, severity, queue, keywords, reasons, scores, deadline)


def _number(value: float) -> str:
    return f"{value:+.2f}".replace(".", ",")


def _percent(value: float) -> str:
    return f"{round(value * 100)} %"


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"« {word} »" for word in words)


class _Keywords:
    """The words that drove the decision, as written, at most :data:`MAX_KEYWORDS`; a word
    already shown inside an earlier phrase ("dit" in "dit d'arrêter l'insuline") is not repeated."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self._covered: set[str] = set()

    def add(self, phrase: str) -> None:
        parts = set(re.findall(r"\w+", phrase.casefold()))
        if parts and not parts <= self._covered and len(self.words) < MAX_KEYWORDS:
            self._covered |= parts
            self.words.append(phrase)


def triage(text: str, *, declared: str | None = None, medical_device: bool = False) -> Triage:
    """Triage one report: ``text`` as filed, ``declared`` what the reporter ticked
    (:data:`DECLARABLE`), ``medical_device`` whether the app is (or drives) a medical device."""
    if declared is not None and declared not in DECLARABLE:
        raise ValueError(f"declared must be one of {', '.join(DECLARABLE)} (got {declared!r})")
    reasons: list[str] = []
    if len(text) > MAX_CHARS:
        limit = f"{MAX_CHARS:,}".replace(",", "\u202f")
        reasons.append(f"Signalement très long : seuls ses {limit} premiers caractères sont analysés.")
    doc = _Document.read(text[:MAX_CHARS])
    model = classifier()
    pairs = doc.tokens()
    tokens = [token for token, _ in pairs]
    spelling: dict[str, str] = {}
    for token, original in pairs:
        spelling.setdefault(token, original)
    scores = model.scores(tokens)
    hits, negated = _apply_rules(doc)

    for rule, span in negated:
        reasons.append(f"« {span} » : terme nié, la règle « {rule.name} » ne s'applique pas.")
    by_rule: dict[Rule, list[str]] = {}
    for hit in hits:
        by_rule.setdefault(hit.rule, []).append(hit.original)
    for rule, originals in by_rule.items():
        reasons.append(
            f"Règle « {rule.name} » : {_quoted(dict.fromkeys(originals))} → {CATEGORIES[rule.category]}."
        )
    guess = max(CATEGORIES, key=lambda c: scores[c]) if model.known(tokens) else None
    if guess is not None:
        words = ", ".join(f"« {spelling[t]} » ({_number(w)})" for t, w in model.evidence(tokens, guess))
        reasons.append(
            f"Classifieur (Bayes naïf) : {CATEGORIES[guess]} à {_percent(scores[guess])}"
            + (f" ; mots décisifs : {words}." if words else " ; aucun mot ne la distingue nettement.")
        )

    category = _categorise(bool(doc.words), hits, guess, scores, declared, reasons)
    keywords = _Keywords()
    for hit in sorted(hits, key=lambda h: h.rule.category != category):
        keywords.add(hit.original)
    for token, _ in model.evidence(tokens, category):
        keywords.add(spelling[token])
    severity = _grade(category, hits, medical_device, reasons)
    queue = _route(category, medical_device, reasons)
    deadline = DEADLINE_DAYS[severity]
    reasons.append(f"Délai de traitement : {deadline} jours (criticité {severity}).")
    return Triage(category, severity, queue, tuple(keywords.words), tuple(reasons), scores, deadline)


def _categorise(
    has_text: bool,
    hits: Sequence[_Hit],
    guess: str | None,
    scores: Mapping[str, float],
    declared: str | None,
    reasons: list[str],
) -> str:
    """Rules, else the classifier, else what was declared, else ``autre``; declared harm stays."""
    ruled = next((c for c in RULE_PRIORITY if any(hit.rule.category == c for hit in hits)), None)
    if not has_text:
        category = declared or "autre"
        reasons.append(
            "Le signalement ne contient aucun texte : "
            + (
                f"la catégorie déclarée « {CATEGORIES[category]} » est retenue"
                if declared
                else "catégorie « Autre »"
            )
            + ", à qualifier par un agent."
        )
    elif ruled is not None:
        category = ruled
        overruled = (
            f" (elles priment sur le classifieur, qui proposait {CATEGORIES[guess]})"
            if guess is not None and guess != ruled
            else ""
        )
        reasons.append(f"Catégorie retenue : {CATEGORIES[ruled]}, par les règles{overruled}.")
    elif guess is not None and not (
        declared in ("dysfonctionnement", "autre") and scores[guess] < HINT_THRESHOLD
    ):
        category = guess
        reasons.append(
            f"Catégorie retenue : {CATEGORIES[guess]}, par le classifieur (aucune règle ne s'applique)."
        )
    elif declared is not None:
        category = declared
        reasons.append(
            f"Le texte ne permet pas de trancher : la catégorie déclarée « {CATEGORIES[declared]} » est retenue."
        )
    else:
        category = "autre"
        reasons.append(
            "Aucune règle ne s'applique et aucun mot n'est connu du classifieur : catégorie « Autre »."
        )

    if declared == HARM and category != HARM:
        reasons.append(
            f"Le déclarant signale un effet néfaste pour la santé : cette catégorie est conservée "
            f"(le texte relevait de « {CATEGORIES[category]} »), un tri automatique ne l'écarte jamais."
        )
        return HARM
    if declared is not None and declared not in (category, "autre") and has_text:
        reasons.append(
            f"Le déclarant avait indiqué « {CATEGORIES[declared]} » ; le texte relève de « {CATEGORIES[category]} »."
        )
    return category


def _grade(category: str, hits: Sequence[_Hit], medical_device: bool, reasons: list[str]) -> str:
    """The category's floor, raised by the rules that fired; harm through a medical device with a
    sign of gravity is critique."""
    severity = DEFAULT_SEVERITY[category]
    graded = [hit for hit in hits if hit.rule.severity is not None]
    worst = max((_RANK[hit.rule.severity or "mineure"] for hit in graded), default=-1)
    if worst >= _RANK[severity]:
        severity = next(level for level, rank in _RANK.items() if rank == worst)
        causes = dict.fromkeys(
            f"« {hit.original} » ({hit.rule.name})" for hit in graded if hit.rule.severity == severity
        )
        reasons.append(f"Criticité {severity} : {', '.join(causes)}.")
    else:
        reasons.append(
            f"Criticité {severity} : niveau par défaut de la catégorie « {CATEGORIES[category]} »."
        )
    if medical_device and category == HARM and severity != "critique":
        grave = dict.fromkeys(hit.original for hit in graded if hit.rule.category == HARM)
        if grave:
            severity = "critique"
            reasons.append(
                f"Dispositif médical et effet néfaste avec signe de gravité ({_quoted(grave)}) : "
                "criticité relevée à critique (matériovigilance)."
            )
    return severity


def _route(category: str, medical_device: bool, reasons: list[str]) -> str:
    """Harm to health or a medical device: the medicines agency's control queue; else the
    digital-health authority's surveillance queue."""
    causes = [
        cause
        for cause, present in (
            ("effet néfaste pour la santé", category == HARM),
            ("l'application est un dispositif médical", medical_device),
        )
        if present
    ]
    queue = "controle" if causes else "surveillance"
    why = " et ".join(causes) or "ni effet néfaste pour la santé ni dispositif médical"
    reasons.append(f"File « {QUEUES[queue]} » : {why}.")
    return queue
