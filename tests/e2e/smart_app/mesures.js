// The test app « Mes pesées », once authorised (fhirclient's FHIR.oauth2.ready()).
//
// It reads the patient (her name), counts her vital signs, tries her allergies and her documents
// (a test gives it no scope for them: the server must refuse), sends a series of three body
// weights in one transaction Bundle, and reads its observations again on demand (after the
// person disconnects the app, the server must refuse the token). Every outcome is written into
// an element with a stable id, for the browser test to read.
(function () {
  "use strict";
  const LOINC = "http://loinc.org";
  const UCUM = "http://unitsofmeasure.org";
  const DAY_MS = 24 * 3600 * 1000;
  const SERIES = [72.4, 72.1, 71.8]; // kg, oldest first

  function show(id, text) {
    document.getElementById(id).textContent = text == null ? "" : String(text);
  }

  function statusOf(error) {
    return (error && (error.status || error.statusCode)) || (error && error.message) || String(error);
  }

  function refused(error) {
    return "refusé (" + statusOf(error) + ")";
  }

  function allowed(bundle) {
    return "autorisé (" + ((bundle && bundle.entry) || []).length + ")";
  }

  function search(client, query) {
    return client.request(query + (query.includes("?") ? "&" : "?") + "patient=" + encodeURIComponent(client.patient.id));
  }

  function weight(patientId, kg, when) {
    return {
      resourceType: "Observation",
      meta: { profile: ["http://hl7.org/fhir/StructureDefinition/bodyweight"] },
      status: "final",
      category: [{
        coding: [{
          system: "http://terminology.hl7.org/CodeSystem/observation-category",
          code: "vital-signs",
          display: "Vital Signs",
        }],
      }],
      code: { coding: [{ system: LOINC, code: "29463-7", display: "Body weight" }], text: "Poids" },
      subject: { reference: "Patient/" + patientId },
      performer: [{ reference: "Patient/" + patientId }],
      effectiveDateTime: when.toISOString(),
      valueQuantity: { value: kg, unit: "kg", system: UCUM, code: "kg" },
    };
  }

  function series(patientId) {
    const now = Date.now();
    return {
      resourceType: "Bundle",
      type: "transaction",
      entry: SERIES.map(function (kg, i) {
        // over the last three days, the newest one a few minutes ago
        const when = new Date(now - (SERIES.length - 1 - i) * DAY_MS - 5 * 60 * 1000);
        return { resource: weight(patientId, kg, when), request: { method: "POST", url: "Observation" } };
      }),
    };
  }

  async function send(client) {
    show("ecriture", "envoi…");
    try {
      const response = await client.request({
        url: client.state.serverUrl, // the FHIR base itself: a transaction
        method: "POST",
        body: JSON.stringify(series(client.patient.id)),
        headers: { "content-type": "application/fhir+json" },
      });
      const created = (response.entry || []).filter(function (e) {
        return e.response && String(e.response.status).indexOf("201") === 0;
      });
      show("ecriture", "série envoyée (" + created.length + ")");
    } catch (error) {
      show("ecriture", "échec (" + statusOf(error) + ")");
    }
  }

  async function reread(client) {
    show("relecture", "lecture…");
    show("relecture", await search(client, "Observation?category=vital-signs").then(allowed, refused));
  }

  FHIR.oauth2.ready()
    .then(async function (client) {
      const patient = await client.patient.read();
      const name = (patient.name || []).find(function (n) { return n.use === "official"; }) || (patient.name || [])[0] || {};
      show("patient-nom", ((name.given || []).join(" ") + " " + (name.family || "")).trim());
      show("lecture-observations", await search(client, "Observation?category=vital-signs").then(allowed, refused));
      show("lecture-allergies", await search(client, "AllergyIntolerance").then(allowed, refused));
      show("lecture-documents", await search(client, "DocumentReference").then(allowed, refused));
      show("portees", client.state.tokenResponse.scope);
      const sendButton = document.getElementById("envoyer");
      const rereadButton = document.getElementById("relire");
      sendButton.addEventListener("click", function () { send(client); });
      rereadButton.addEventListener("click", function () { reread(client); });
      sendButton.disabled = false;
      rereadButton.disabled = false;
      document.body.dataset.status = "ready";
    })
    .catch(function (error) {
      show("erreur", "Erreur : " + (error && error.message ? error.message : error));
      document.body.dataset.status = "error";
    });
})();
