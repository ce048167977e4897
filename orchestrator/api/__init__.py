"""The REST API: powertools' APIGatewayRestResolver over the service layer."""
