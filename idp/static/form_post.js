// response_mode=form_post: submit the authorization response to the client.
document.getElementById("form-post").submit();
