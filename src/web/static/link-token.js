// Every link the app mails carries its token in the fragment (#token=...), which the browser never
// sends to a server (docs/decisions/0015-a-reset-request-answers-before-the-lookup.md). On load, this
// moves the token into the page's form (its hidden `token` field) and removes the fragment from the
// address bar and the history entry, so it is neither left on screen nor reopened from history. A form
// re-rendered after a refusal has no fragment: it holds the token the server put back (the reset form,
// after a refused password) or none (a dead link, which only a new mail replaces).
(function () {
  'use strict';
  var token = new URLSearchParams(window.location.hash.slice(1)).get('token');
  if (token === null) return;
  var field = document.querySelector('form input[name="token"]');
  if (field) field.value = token;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
})();
