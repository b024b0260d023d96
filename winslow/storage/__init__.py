"""Object storage: the one S3 bucket that holds the resource pool, workspaces and logs.

``s3`` builds the boto3 client and turns its errors into ours, ``keys`` lays out the
bucket, ``objects`` is the store the rest of Winslow calls, and ``seaweed`` runs a local
SeaweedFS (``weed mini``) for ``winslow up`` and the tests. Only this package imports
boto3; botocore's exceptions stop here.
"""
