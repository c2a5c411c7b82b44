"""The protocol: Authlib's authorization server and the OP's endpoints.

server.py wires Authlib (config_oauth); grants.py and client_auth.py answer
its questions, from idp.tokens and models.Client; authorize.py is
/authorize with its login and consent steps; views.py the other endpoints;
discovery.py and documents.py the discovery document and JWKS; registration.py
RFC 7591/7592; backchannel.py sends back-channel logout notices.
"""
