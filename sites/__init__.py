"""Relying parties of iTSCOM ID: separate apps that know the OP only through
its discovery document and their own client id and secret."""
