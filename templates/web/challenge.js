// digest's sign-up form, DIGEST_SIGNUP_CHALLENGE=altcha: solve the page's proof-of-work challenge.
//
// The form carries a challenge in ALTCHA's format (data-challenge): a salt, the
// SHA-256 hex of salt + some number from 0 to maxNumber, and the server's
// signature of that hash. This script finds the number with WebCrypto and puts
// the answer, base64 of {algorithm, challenge, number, salt, signature}, in the
// hidden "altcha" field; the button is held until then. Nothing is sent anywhere
// but with the form itself.
(function () {
  "use strict";

  var form = document.querySelector("form[data-challenge]");
  if (!form) {
    return;
  }
  var field = form.querySelector("input[name=altcha]");
  var button = form.querySelector("button[type=submit]");
  var status = document.getElementById("challenge-status");
  var challenge = JSON.parse(form.getAttribute("data-challenge"));
  var BATCH = 1000; // digests awaited together: WebCrypto is asynchronous, one at a time is slow

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  function hex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  async function solve() {
    var encoder = new TextEncoder();
    for (var start = 0; start <= challenge.maxNumber; start += BATCH) {
      var end = Math.min(start + BATCH, challenge.maxNumber + 1);
      var tries = [];
      for (var n = start; n < end; n++) {
        tries.push(crypto.subtle.digest("SHA-256", encoder.encode(challenge.salt + n)));
      }
      var digests = await Promise.all(tries);
      for (var i = 0; i < digests.length; i++) {
        if (hex(digests[i]) === challenge.challenge) {
          return start + i;
        }
      }
    }
    return null;
  }

  if (!window.crypto || !window.crypto.subtle) {
    // WebCrypto exists only on https:// pages (and on localhost).
    say("This browser cannot check the form here: please open this page over https.");
    return;
  }
  button.disabled = true;
  say("Checking that you are not a robot: a second or two…");
  solve().then(
    function (number) {
      if (number === null) {
        say("The check failed: please reload the page.");
        return;
      }
      field.value = btoa(
        JSON.stringify({
          algorithm: challenge.algorithm,
          challenge: challenge.challenge,
          number: number,
          salt: challenge.salt,
          signature: challenge.signature,
        })
      );
      button.disabled = false;
      say("");
    },
    function () {
      say("The check failed: please reload the page.");
    }
  );
})();
