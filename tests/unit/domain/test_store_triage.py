"""The triage of reports about referenced apps (``domain/store/triage.py``): rules, classifier,
severity, routing, and the accuracy on the corpus's held-out evaluation set."""

from __future__ import annotations

import math
import re
from collections import Counter

import orjson
import pytest

from hygie.domain.store.triage import (
    CATEGORIES,
    DEADLINE_DAYS,
    MAX_CHARS,
    QUEUES,
    SEVERITIES,
    Classifier,
    Triage,
    classifier,
    load_corpus,
    tokenize,
    triage,
)

CRASH = "L'application plante dès que j'ouvre le carnet de glycémie depuis la mise à jour."


def _accuracy(predict: list[tuple[str, str]]) -> float:
    return sum(expected == got for expected, got in predict) / len(predict)


# ---------------------------------------------------------------------------- the corpus


def test_corpus_has_enough_examples_per_category_and_a_separate_evaluation_set() -> None:
    corpus = load_corpus()
    per_category = Counter(example.category for example in corpus.training)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 20
    assert {example.category for example in corpus.evaluation} == set(CATEGORIES)
    trained = {example.text.casefold() for example in corpus.training}
    assert not [example.text for example in corpus.evaluation if example.text.casefold() in trained]


def test_accuracy_on_the_held_out_evaluation_set() -> None:
    evaluation = load_corpus().evaluation
    model = classifier()
    whole = _accuracy([(example.category, triage(example.text).category) for example in evaluation])
    alone = _accuracy(
        [
            (example.category, max((s := model.scores(tokenize(example.text))), key=lambda c: s[c]))
            for example in evaluation
        ]
    )
    print(
        f"triage accuracy on {len(evaluation)} held-out reports: {whole:.3f} (classifier alone: {alone:.3f})"
    )
    assert whole >= 0.8
    assert alone >= 0.6  # the rules add to a classifier that already does most of the work


def test_the_rules_agree_with_the_training_examples() -> None:
    training = load_corpus().training
    agreement = _accuracy([(example.category, triage(example.text).category) for example in training])
    assert agreement >= 0.95


# ---------------------------------------------------------------------------- categories and severity


@pytest.mark.parametrize(
    ("text", "category", "severity"),
    [
        (
            "Décès de mon père : l'alarme du moniteur cardiaque n'a pas sonné.",
            "effet_indesirable",
            "critique",
        ),
        ("Ma fille a été HOSPITALISÉE après une erreur de dosage.", "effet_indesirable", "critique"),
        (
            "Le bolus calculé était faux, mauvaise dose d'insuline et hypoglycémie.",
            "effet_indesirable",
            "majeure",
        ),
        ("J'ai fait un malaise en suivant le programme.", "effet_indesirable", "majeure"),
        ("Une fuite de données a exposé mes résultats.", "donnees_personnelles", "majeure"),
        ("Je reçois de la publicité ciblée après avoir noté mes règles.", "donnees_personnelles", "majeure"),
        ("Mon compte a été piraté hier soir.", "securite", "majeure"),
        ("Le mot de passe est envoyé en clair par courriel.", "securite", "majeure"),
        ("On voit le dossier d'un autre patient en changeant l'adresse.", "securite", "critique"),
        ("Le lecteur d'écran ne lit pas les boutons.", "accessibilite", "mineure"),
        ("Le contraste est trop faible pour moi.", "accessibilite", "mineure"),
        (CRASH, "dysfonctionnement", "mineure"),
        ("La synchronisation avec la montre échoue.", "dysfonctionnement", "mineure"),
        ("Les valeurs de tension affichées sont fausses.", "dysfonctionnement", "majeure"),
        ("Les conseils nutritionnels sont faux et trompeurs.", "information_trompeuse", "mineure"),
        (
            "L'assistant conseille d'arrêter son traitement dès qu'on va mieux.",
            "information_trompeuse",
            "majeure",
        ),
    ],
)
def test_rules_set_category_and_severity(text: str, category: str, severity: str) -> None:
    result = triage(text)
    assert (result.category, result.severity) == (category, severity)
    assert result.deadline_days == DEADLINE_DAYS[severity]
    assert any(reason.startswith("Règle « ") for reason in result.reasons)


def test_accents_and_case_do_not_matter_and_keywords_keep_the_reporters_spelling() -> None:
    folded = triage("ma mere a ete hospitalisee")
    written = triage("Ma MÈRE a été HOSPITALISÉE")
    assert folded.category == written.category == "effet_indesirable"
    assert folded.severity == written.severity == "critique"
    assert "HOSPITALISÉE" in written.keywords
    assert "hospitalisee" in folded.keywords


def test_the_most_serious_category_wins_when_rules_of_several_fire() -> None:
    result = triage("L'application a planté pendant le calcul et j'ai fait une hypoglycémie.")
    assert result.category == "effet_indesirable"
    assert result.queue == "controle"


def test_a_rule_wins_over_the_classifier() -> None:
    result = triage("Le chatbot m'a dit d'arrêter l'insuline.")
    assert result.category == "information_trompeuse"
    assert any("par les règles" in reason for reason in result.reasons)


def test_without_a_rule_the_classifier_decides_and_says_so() -> None:
    result = triage("Le tableau de bord reste vide alors que le podomètre a compté mes pas.")
    assert not any(reason.startswith("Règle") for reason in result.reasons)
    assert result.category == max(result.scores, key=lambda c: result.scores[c])
    assert any("par le classifieur" in reason for reason in result.reasons)


# ---------------------------------------------------------------------------- negation


@pytest.mark.parametrize(
    "denial",
    [
        "Pas de malaise",
        "Aucun malaise",
        "Je n'ai pas eu de malaise",
        "Sans hospitalisation",
        "Je n'ai pas été hospitalisé",
        "Jamais de vertiges",
    ],
)
def test_a_denied_symptom_does_not_flag_harm(denial: str) -> None:
    result = triage(f"{denial}, mais {CRASH}")
    assert result.category == "dysfonctionnement"
    assert result.severity == "mineure"
    assert result.queue == "surveillance"
    assert any("terme nié" in reason for reason in result.reasons)


def test_a_symptom_denied_once_and_reported_later_still_counts() -> None:
    result = triage("Pas de malaise hier, mais ce matin un malaise après la dose proposée.")
    assert result.category == "effet_indesirable"


def test_a_missing_feature_is_the_complaint_not_a_denial() -> None:
    assert triage("Les vidéos n'ont pas de sous-titres.").category == "accessibilite"
    assert triage("Les échanges avec le serveur se font sans chiffrement.").category == "securite"
    assert triage("Mes mesures sont partagées sans mon accord.").category == "donnees_personnelles"


def test_tokens_are_folded_stemmed_and_denials_marked() -> None:
    assert tokenize("Pas de malaise, l'écran a planté") == ("non_malais", "ecran", "plant")
    assert tokenize("Je n'ai pas eu d'hypoglycémie") == ("non_hypoglycemi",)
    assert tokenize("ŒDÈME") == ("oedem",)


# ---------------------------------------------------------------------------- declared category, device


def test_declared_harm_is_never_overruled_downwards() -> None:
    result = triage(CRASH, declared="effet_indesirable")
    assert result.category == "effet_indesirable"
    assert result.queue == "controle"
    assert result.severity == "majeure"
    assert any("Le déclarant signale un effet néfaste" in reason for reason in result.reasons)


def test_a_declared_malfunction_is_overruled_upwards_by_harm_in_the_text() -> None:
    result = triage("L'appli a doublé la dose et j'ai fini aux urgences.", declared="dysfonctionnement")
    assert result.category == "effet_indesirable"
    assert result.severity == "critique"
    assert any("Le déclarant avait indiqué" in reason for reason in result.reasons)


def test_the_declared_category_is_used_when_the_text_does_not_decide() -> None:
    result = triage("xyzzy plugh", declared="dysfonctionnement")
    assert result.category == "dysfonctionnement"
    assert any("ne permet pas de trancher" in reason for reason in result.reasons)
    assert triage("xyzzy plugh").category == "autre"


def test_an_unknown_declared_category_is_refused() -> None:
    with pytest.raises(ValueError, match="declared"):
        triage(CRASH, declared="securite")


def test_harm_through_a_medical_device_with_a_sign_of_gravity_is_critical() -> None:
    text = "Le lecteur de glycémie affichait une valeur normale, j'ai fait une hypoglycémie."
    assert triage(text).severity == "majeure"
    device = triage(text, medical_device=True)
    assert device.severity == "critique"
    assert device.deadline_days == DEADLINE_DAYS["critique"] == 2
    assert any("Dispositif médical" in reason for reason in device.reasons)


# ---------------------------------------------------------------------------- routing


def test_harm_goes_to_the_medicines_agency() -> None:
    result = triage("J'ai fait un malaise en suivant les conseils de l'application.")
    assert result.queue == "controle"
    assert result.reasons[-2] == f"File « {QUEUES['controle']} » : effet néfaste pour la santé."


def test_a_medical_device_goes_to_the_medicines_agency_whatever_the_category() -> None:
    result = triage(CRASH, medical_device=True)
    assert result.category == "dysfonctionnement"
    assert result.queue == "controle"
    assert "dispositif médical" in result.reasons[-2]


def test_everything_else_goes_to_the_digital_health_authority() -> None:
    for text in (CRASH, "Mon compte a été piraté.", "Le contraste est trop faible."):
        result = triage(text)
        assert result.queue == "surveillance"
        assert f"File « {QUEUES['surveillance']} »" in result.reasons[-2]


# ---------------------------------------------------------------------------- explanations


@pytest.mark.parametrize(
    "text",
    [
        CRASH,
        "Ma mère a été hospitalisée après le jeûne conseillé par l'application.",
        "Le tableau de bord reste vide alors que le podomètre a compté mes pas.",
        "Mes données de fertilité sont revendues à des annonceurs.",
        "Le prix a doublé sans explication entre deux renouvellements de l'abonnement.",
    ],
)
def test_explanations_name_words_of_the_report(text: str) -> None:
    result = triage(text)
    assert result.reasons
    assert result.keywords
    assert len(result.keywords) <= 8
    for word in result.keywords:
        assert word in text  # as written by the reporter
    classifier_reason = next(reason for reason in result.reasons if reason.startswith("Classifieur"))
    weighed = re.findall(r"« ([^»]+) » \(\+\d+,\d\d\)", classifier_reason)
    assert weighed
    assert all(word in text for word in weighed)
    assert any(f"« {keyword} »" in " ".join(result.reasons) for keyword in result.keywords)


def test_the_classifier_explains_with_its_top_three_words_and_their_weights() -> None:
    model = classifier()
    tokens = tokenize(CRASH)
    evidence = model.evidence(tokens, "dysfonctionnement")
    assert 1 <= len(evidence) <= 3
    assert all(weight > 0 for _, weight in evidence)
    assert [weight for _, weight in evidence] == sorted((weight for _, weight in evidence), reverse=True)
    assert all(token in tokens for token, _ in evidence)


def test_scores_are_probabilities_over_every_category() -> None:
    for text in (CRASH, "", "xyzzy"):
        scores = triage(text).scores
        assert list(scores) == list(CATEGORIES)
        assert math.isclose(sum(scores.values()), 1.0)
        assert all(0.0 <= value <= 1.0 for value in scores.values())


# ---------------------------------------------------------------------------- edges, determinism, JSON


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n"])
def test_an_empty_report_is_other_minor_for_surveillance_with_a_reason(text: str) -> None:
    result = triage(text)
    assert (result.category, result.severity, result.queue) == ("autre", "mineure", "surveillance")
    assert result.keywords == ()
    assert any("aucun texte" in reason for reason in result.reasons)
    assert result.deadline_days == DEADLINE_DAYS["mineure"]


def test_an_empty_report_declared_as_harm_stays_harm() -> None:
    result = triage(" ", declared="effet_indesirable")
    assert (result.category, result.queue) == ("effet_indesirable", "controle")


def test_only_the_beginning_of_a_very_long_report_is_read() -> None:
    padding = "rien à signaler " * (MAX_CHARS // 16 + 10)
    assert len(padding) > MAX_CHARS
    result = triage(padding + " décès du patient")
    assert result.severity != "critique"  # the word lies beyond the analysed part
    assert any("premiers caractères" in reason for reason in result.reasons)
    huge = triage("Décès du patient. " + "L'application plante. " * 50_000)
    assert (huge.category, huge.severity) == ("effet_indesirable", "critique")


def test_triage_is_deterministic() -> None:
    texts = [example.text for example in load_corpus().evaluation[:10]] + [CRASH, ""]
    assert [triage(text) for text in texts] == [triage(text) for text in texts]
    retrained = Classifier.train(load_corpus().training)
    for text in texts:
        assert retrained.scores(tokenize(text)) == classifier().scores(tokenize(text))


def test_json_round_trip() -> None:
    result = triage("Ma fille a été hospitalisée après une erreur de dosage.", medical_device=True)
    data = orjson.loads(orjson.dumps(result.to_json()))
    assert Triage.from_json(data) == result
    assert data["category"] in CATEGORIES and data["severity"] in SEVERITIES and data["queue"] in QUEUES


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"category": "inconnue"},
        {
            "category": "inconnue",
            "severity": "mineure",
            "queue": "surveillance",
            "keywords": [],
            "reasons": [],
            "scores": {},
            "deadline_days": 30,
        },
    ],
)
def test_from_json_refuses_what_is_not_a_triage(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a triage"):
        Triage.from_json(broken)


def test_constants() -> None:
    assert list(CATEGORIES) == [
        "dysfonctionnement",
        "effet_indesirable",
        "donnees_personnelles",
        "securite",
        "accessibilite",
        "information_trompeuse",
        "autre",
    ]
    assert DEADLINE_DAYS == {"critique": 2, "majeure": 10, "mineure": 30}
    assert set(SEVERITIES) == set(DEADLINE_DAYS)
    assert set(QUEUES) == {"surveillance", "controle"}
