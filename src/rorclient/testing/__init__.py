__all__: list[str] = []  # the suite lives in rorclient.testing.store_conformance (it imports pytest)
