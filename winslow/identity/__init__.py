"""Who a person is, as other systems tell it: an LDAP directory, an OpenID Connect provider.

Each adapter turns a successful sign-in there into an ``ExternalIdentity``; the store
then makes or updates the Winslow user and the groups it belongs to.
"""
