// Adding a document to the ENS: the upload's progress, as a progressive enhancement.
// Without this script the form is posted as usual; with it, the same form is sent by
// XMLHttpRequest so that upload.onprogress can fill the <progress> bar. The server answers
// {"location": …} on success (the page to open), or the form again with its errors (shown in
// place of the current one).

const FORM = "form[data-envoi-progressif]";

function enhance(form) {
  const box = document.getElementById("envoi");
  const bar = document.getElementById("progression");
  const text = document.getElementById("progression-texte");
  const button = document.getElementById("envoyer");
  if (!box || !bar || !text || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        const percent = Math.round((progress.loaded / progress.total) * 100);
        bar.value = percent;
        text.textContent = `Envoi : ${percent} %`;
      }
    });
    request.upload.addEventListener("load", () => {
      bar.value = 100;
      text.textContent = "Fichier envoyé, vérification en cours…";
    });
    request.addEventListener("load", () => {
      const type = request.getResponseHeader("Content-Type") || "";
      if (request.status < 400 && type.startsWith("application/json")) {
        const answer = JSON.parse(request.responseText);
        window.location.assign(answer.location);
      } else if (request.status < 400) {
        window.location.assign(request.responseURL || form.action);
      } else if (type.startsWith("text/html")) {
        replacePage(request.responseText);
      } else {
        failed("Le serveur a refusé l’envoi. Rechargez la page et recommencez.");
      }
    });
    request.addEventListener("error", () => {
      failed("L’envoi a échoué. Vérifiez votre connexion à internet et recommencez.");
    });
    box.hidden = false;
    bar.value = 0;
    text.textContent = "Envoi : 0 %";
    button.disabled = true;
    request.send(new FormData(form));
  });

  function failed(message) {
    text.textContent = message;
    button.disabled = false;
  }
}

// The form shown again with its errors: the new page's content replaces the current one.
function replacePage(html) {
  const page = new DOMParser().parseFromString(html, "text/html");
  const fresh = page.querySelector("main");
  const main = document.querySelector("main");
  if (!fresh || !main) {
    document.documentElement.innerHTML = page.documentElement.innerHTML;
    return;
  }
  main.innerHTML = fresh.innerHTML;
  document.title = page.title;
  const form = main.querySelector(FORM);
  if (form) {
    enhance(form);
  }
  const summary = document.getElementById("erreurs");
  if (summary) {
    summary.focus();
  }
}

const form = document.querySelector(FORM);
if (form) {
  enhance(form);
}
