// Progressive enhancement: check topic queries while they are typed.
// The forms work without this; the server checks everything again.
(function () {
  "use strict";
  var area = document.getElementById("topics");
  var status = document.getElementById("topics-status");
  if (!area || !status || !window.fetch) { return; }
  var timer = null;
  function check() {
    var url = area.getAttribute("data-check-url");
    var body = new URLSearchParams({ topics: area.value });
    fetch(url, { method: "POST", body: body, headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        status.textContent = result.ok ? (result.count ? "Looks good." : "") : result.errors.join(" ");
        status.className = result.ok ? "status" : "status invalid";
        area.setAttribute("aria-invalid", result.ok ? "false" : "true");
      })
      .catch(function () { status.textContent = ""; });
  }
  area.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 400);
  });
})();
