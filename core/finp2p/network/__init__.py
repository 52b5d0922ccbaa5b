"""How nodes talk: transports, request/response, pub/sub, broadcast, adverts and discovery."""
