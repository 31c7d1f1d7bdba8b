// The launch page of the test app « Mes pesées » (SMART App Launch 2.0, fhirclient).
//
// Both launches: an EHR launch (a portal opens ?iss=…&launch=…) and a standalone launch (?iss=…
// only, the person signs in and the server gives the patient context). fhirclient reads iss and
// launch from the URL itself. The client id and the scopes come from the query string too, so
// that each test registers the client it needs (a real app has them fixed).
(function () {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const status = document.getElementById("statut");
  const clientId = params.get("client_id");
  const scope = params.get("scope");
  if (!clientId || !scope || !params.get("iss")) {
    status.textContent = "Erreur : il manque iss, client_id ou scope dans l’adresse de lancement.";
    document.body.dataset.status = "error";
    return;
  }
  FHIR.oauth2.authorize({
    clientId: clientId,
    scope: scope,
    redirectUri: "mesures.html",
    pkceMode: "required",
  }).catch(function (error) {
    status.textContent = "Erreur : " + (error && error.message ? error.message : error);
    document.body.dataset.status = "error";
  });
})();
